"""Run the contenders on one photo and chain: warm up, check the outputs, then time them.

Each contender runs in its own spawned process, set up once when it starts: imgserve's as
worker/tasks.py sets up a worker process, the peers' with nothing but one OpenCV thread.
The main process only hands out the runs, in turns, and checks the outputs.
"""

from __future__ import annotations

import gc
import multiprocessing
import shutil
import statistics
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image

from benchmarks.contenders import JPEG_QUALITY, PEERS, Runner, codec_floor, load_pyvips
from benchmarks.harness import rotated
from benchmarks.images import read_pixels

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
        self.encode = EncodeOptions(jpeg_quality=JPEG_QUALITY)
        self.stages: dict[str, float] = {}

    def __call__(self, source: Path, output: Path) -> None:
        """Process one photo, as process_image does for a job's image; keep its stage times."""
        self.stages = {}
        self.process(source, output, self.operations, encode=self.encode, on_step=self.note)

    def note(self, stage: str, seconds: float) -> None:
        """Add the seconds of one application of a step to its stage."""
        self.stages[stage] = self.stages.get(stage, 0.0) + seconds


# The state of a contender's own process: how it was set up, the runner of the current cell.
_setup: list[str] = []
_runners: dict[str, Runner] = {}


def start_process(name: str) -> None:
    """Set up a contender's process as it starts: imgserve's as its worker processes run."""
    cv2.setNumThreads(1)
    setup = ""
    if name == "imgserve":
        # Exactly what imgserve's worker does in each of its pool processes.
        import pipeline
        from worker.memory import keep_large_allocations

        pipeline.configure_opencv(1)
        setup = f", keep_large_allocations() {keep_large_allocations()}"
    elif name == "pyvips":
        setup = f", libvips concurrency {load_pyvips().concurrency_get()}"
    _setup.append(f"OpenCV threads {cv2.getNumThreads()}{setup}")


def process_setup() -> str:
    """Return how this contender's process was set up."""
    return _setup[-1]


def prepare(name: str, chain: Sequence[str], reference: Sequence[Path]) -> None:
    """Make this process's runner for a chain; the floor's encodes the reference's outputs."""
    _runners.clear()
    if name == "floor":
        _runners[name] = codec_floor([(path.name, read_pixels(path)) for path in reference])
    else:
        _runners[name] = (Imgserve if name == "imgserve" else PEERS[name])(chain)


def run_once(name: str, source: Path, folder: Path) -> tuple[float, dict[str, float]]:
    """Run this process's runner once into an emptied folder, timing it with the GC off."""
    runner = _runners[name]
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        runner(source, folder / f"out{output_suffix(source)}")
        seconds = time.perf_counter() - start
    finally:
        gc.enable()
    return seconds, runner.stages if isinstance(runner, Imgserve) else {}


def release() -> None:
    """Drop this process's runner, and the floor's pixels with it."""
    _runners.clear()


class Contender:
    """A contender's own long-lived process, which runs one item of work at a time."""

    def __init__(self, name: str) -> None:
        self.name = name
        spawn = multiprocessing.get_context("spawn")
        self.pool = ProcessPoolExecutor(1, spawn, start_process, (name,))
        self.setup = self.pool.submit(process_setup).result()

    def prepare(self, chain: Sequence[str], reference: Sequence[Path] = ()) -> None:
        """Make the contender's runner for a chain, in its process."""
        self.pool.submit(prepare, self.name, chain, reference).result()

    def run(self, source: Path, folder: Path) -> tuple[float, dict[str, float]]:
        """Run the contender once in its process: its seconds and, for imgserve, its stages."""
        return self.pool.submit(run_once, self.name, source, folder).result()

    def release(self) -> None:
        """Drop the contender's runner."""
        self.pool.submit(release).result()


@contextmanager
def contender_processes(names: Sequence[str]) -> Iterator[dict[str, Contender]]:
    """Start one process per contender, one after another, and stop them all afterwards."""
    with ExitStack() as stack:
        started: dict[str, Contender] = {}
        for name in names:
            started[name] = Contender(name)
            stack.callback(started[name].pool.shutdown)
        yield started


@dataclass
class Cell:
    """The measurements of every contender on one photo and one chain."""

    megapixels: int
    chain: tuple[str, ...]
    kind: str = ""
    """What the photo is when not an sRGB JPEG, e.g. "RGBA PNG"."""
    outputs: int = 0
    times: dict[str, list[float]] = field(default_factory=dict)
    stages: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    largest_difference: float = 0.0

    @property
    def label(self) -> str:
        """Name the photo and chain, e.g. "12 MP resize=0.5"."""
        return f"{self.photo} {', '.join(self.chain)}"

    @property
    def photo(self) -> str:
        """Name the photo, e.g. "12 MP" or "12 MP RGBA PNG"."""
        return f"{self.megapixels} MP {self.kind}".strip()

    def median_ms(self, name: str) -> float:
        """Return the contender's median time in milliseconds."""
        return statistics.median(self.times[name]) * 1000


def output_suffix(source: Path) -> str:
    """Return the outputs' format: PNG for a PNG input (so alpha is kept), else JPEG."""
    return ".png" if source.suffix == ".png" else ".jpg"


def output_files(folder: Path) -> list[Path]:
    """Return the outputs in folder, in output order (out_2 before out_10)."""
    files = [path for path in folder.glob("*.*g") if not path.name.startswith(".")]
    return sorted(files, key=lambda path: (len(path.name), path.name))


def thumbnail(path: Path) -> npt.NDArray[np.float32]:
    """Return a small thumbnail of a JPEG, for comparing contents."""
    pixels = read_pixels(path, cv2.IMREAD_REDUCED_COLOR_8)
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


def warm_up(source: Path, cell: Cell, processes: dict[str, Contender], work: Path) -> None:
    """Run every contender once untimed in its process, and check its outputs."""
    makers = [name for name in processes if name != "floor"]
    for name in makers:
        processes[name].prepare(cell.chain)
        processes[name].run(source, work / name)
    reference = output_files(work / makers[0])
    cell.outputs = len(reference)
    for name in makers[1:]:
        compare_outputs(name, output_files(work / name), reference, cell)
    if "floor" in processes:
        processes["floor"].prepare(cell.chain, reference)
        processes["floor"].run(source, work / "floor")


def measure(
    source: Path, cell: Cell, processes: dict[str, Contender], work: Path, turns: tuple[int, float]
) -> None:
    """Warm up, check and time each contender on a photo and chain, for (repeat, budget) turns."""
    warm_up(source, cell, processes, work)
    repeat, budget = turns
    cell.times = {name: [] for name in processes}
    stages: dict[str, list[float]] = {}
    for turn in range(repeat):
        for name in rotated(list(processes), turn):
            if sum(cell.times[name]) >= budget:
                continue
            seconds, spent = processes[name].run(source, work / name)
            cell.times[name].append(seconds)
            for stage, stage_seconds in spent.items():
                stages.setdefault(stage, []).append(stage_seconds)
    cell.stages = {stage: statistics.median(runs) for stage, runs in stages.items()}
    for name in processes:
        processes[name].release()
        shutil.rmtree(work / name, ignore_errors=True)
