"""Run the contenders on one photo and chain: warm up, check the outputs, then time them."""

from __future__ import annotations

import gc
import shutil
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image

from benchmarks import contenders
from benchmarks.contenders import Runner

PEERS = ("naive", "Pillow", "pyvips")
FACTORIES: dict[str, Callable[[Sequence[str]], Runner]] = {
    "naive": contenders.naive_opencv,
    "Pillow": contenders.pillow,
    "pyvips": contenders.pyvips_chain,
}
# Outputs are compared as 64 px thumbnails; sound but different resamplers stay well within this.
CONTENT_TOLERANCE = 4.0
THUMB_WIDTH = 64


class Imgserve:
    """Run a chain with imgserve's pipeline as a worker does, noting its time by stage."""

    def __init__(self, chain: Sequence[str]) -> None:
        # Imported here, so that --contenders can leave imgserve out while pipeline/ is broken.
        from pipeline import EncodeOptions, parse_operations, process_image

        self.process = process_image
        self.operations = parse_operations(list(chain))
        self.encode = EncodeOptions(jpeg_quality=contenders.JPEG_QUALITY)
        self.stages: dict[str, list[float]] = {}

    def __call__(self, source: Path, output: Path) -> None:
        """Process one photo, as process_image does for a job's image."""
        spent: dict[str, float] = {}

        def note(stage: str, seconds: float) -> None:
            spent[stage] = spent.get(stage, 0.0) + seconds

        self.process(source, output, self.operations, encode=self.encode, on_step=note)
        for stage, seconds in spent.items():
            self.stages.setdefault(stage, []).append(seconds)


@dataclass
class Cell:
    """The measurements of every contender on one photo and one chain."""

    megapixels: int
    chain: tuple[str, ...]
    outputs: int = 0
    times: dict[str, list[float]] = field(default_factory=dict)
    stages: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    largest_difference: float = 0.0

    @property
    def label(self) -> str:
        """Name the photo and chain, e.g. "12 MP resize=0.5"."""
        return f"{self.megapixels} MP {', '.join(self.chain)}"

    def median_ms(self, name: str) -> float:
        """Return the contender's median time in milliseconds."""
        return statistics.median(self.times[name]) * 1000

    def spread(self, name: str) -> float:
        """Return the interquartile range of the contender's runs relative to their median."""
        runs = self.times[name]
        if len(runs) < 4:
            return 0.0
        quartiles = statistics.quantiles(runs, n=4)
        return (quartiles[2] - quartiles[0]) / statistics.median(runs)


def output_files(folder: Path) -> list[Path]:
    """Return the JPEG outputs in folder, in output order (out_2 before out_10)."""
    files = [path for path in folder.glob("*.jpg") if not path.name.startswith(".")]
    return sorted(files, key=lambda path: (len(path.name), path.name))


def clear(folder: Path) -> None:
    """Empty folder, creating it if needed."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)


def thumbnail(path: Path) -> npt.NDArray[np.float32]:
    """Return a small thumbnail of a JPEG, for comparing contents."""
    pixels = cv2.imread(str(path), cv2.IMREAD_REDUCED_COLOR_8)
    if pixels is None:
        raise OSError(f"OpenCV cannot read {path}")
    height = max(1, round(pixels.shape[0] * THUMB_WIDTH / pixels.shape[1]))
    small = cv2.resize(pixels, (THUMB_WIDTH, height), interpolation=cv2.INTER_AREA)
    return small.astype(np.float32)


def compare_outputs(name: str, files: list[Path], reference: list[Path], cell: Cell) -> None:
    """Note where a contender's outputs differ from the reference's in name, size or content."""
    names, wanted = [path.name for path in files], [path.name for path in reference]
    if names != wanted:
        cell.notes.append(f"{name} wrote {len(names)} outputs, expected {len(wanted)}")
        return
    off_by_one = 0
    for path, ref in zip(files, reference, strict=True):
        with Image.open(path) as image, Image.open(ref) as ref_image:
            size, ref_size = image.size, ref_image.size
        if size != ref_size:
            if max(abs(a - b) for a, b in zip(size, ref_size, strict=True)) > 1:
                cell.notes.append(f"{name} made {path.name} {size}, expected {ref_size}")
                return
            off_by_one += 1
            continue
        difference = float(np.mean(np.abs(thumbnail(path) - thumbnail(ref))))
        cell.largest_difference = max(cell.largest_difference, difference)
        if difference > CONTENT_TOLERANCE:
            cell.notes.append(f"{name}'s {path.name} differs by {difference:.1f} grey levels")
    if off_by_one:
        cell.notes.append(f"{name}: {off_by_one} of {len(files)} outputs 1 px off (rounding)")


def warm_up(source: Path, cell: Cell, names: Sequence[str], work: Path) -> dict[str, Runner]:
    """Run every named contender once untimed, check its outputs and return the runners."""
    runners: dict[str, Runner] = {
        name: (Imgserve if name == "imgserve" else FACTORIES[name])(cell.chain)
        for name in names
        if name != "floor"
    }
    for name, runner in runners.items():
        clear(work / name)
        runner(source, work / name / "out.jpg")
    reference_name = next(iter(runners))
    reference = output_files(work / reference_name)
    cell.outputs = len(reference)
    for name in runners:
        if name != reference_name:
            compare_outputs(name, output_files(work / name), reference, cell)
    if "floor" in names:
        pixels = [(path.name, contenders.read_pixels(path)) for path in reference]
        runners["floor"] = contenders.codec_floor(pixels)
        clear(work / "floor")
        runners["floor"](source, work / "floor" / "out.jpg")
    return runners


def measure(
    source: Path, cell: Cell, names: Sequence[str], work: Path, repeat: int, budget: float
) -> None:
    """Warm up, check and time every named contender on one photo and chain."""
    runners = warm_up(source, cell, names, work)
    ours = runners.get("imgserve")
    if isinstance(ours, Imgserve):
        ours.stages.clear()
    order = list(runners)
    cell.times = {name: [] for name in order}
    for turn in range(repeat):
        # Take turns, starting with a different contender each time, so drift hits all alike.
        for name in order[turn % len(order) :] + order[: turn % len(order)]:
            if sum(cell.times[name]) >= budget:
                continue
            clear(work / name)
            gc.collect()
            gc.disable()
            start = time.perf_counter()
            runners[name](source, work / name / "out.jpg")
            cell.times[name].append(time.perf_counter() - start)
            gc.enable()
    if isinstance(ours, Imgserve):
        cell.stages = {stage: statistics.median(runs) for stage, runs in ours.stages.items()}
    for name in order:
        shutil.rmtree(work / name, ignore_errors=True)
