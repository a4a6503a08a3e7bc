"""Time imgserve's pipeline against naive OpenCV, Pillow, pyvips and the codec floor.

Run `make bench` (or `python -m benchmarks.pipeline --help`). Every library runs on one
thread. For each photo size and chain, each contender runs once untimed (the warm-up, whose
outputs are checked against imgserve's), then the contenders take turns for up to --repeat
timed runs each and the median wall time is reported. The report, in Markdown, goes to
stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import PIL
from PIL import Image, features

from benchmarks import contenders
from benchmarks.contenders import Runner
from benchmarks.images import DEFAULT_SEED, GRAIN_SIGMA, ensure_photo, photo_size

CHAINS: tuple[tuple[str, ...], ...] = (
    ("split", "resize=2", "split", "resize=2"),
    ("resize=0.5",),
    ("resize=0.1",),
    ("blur=25",),
    ("split", "resize=1.5", "blur=25"),
)
PEERS = ("naive", "Pillow", "pyvips")
CONTENDERS = ("imgserve", *PEERS, "floor")
FACTORIES: dict[str, Callable[[Sequence[str]], Runner]] = {
    "naive": contenders.naive_opencv,
    "Pillow": contenders.pillow,
    "pyvips": contenders.pyvips_chain,
}
STAGES = ("decode", "split", "resize", "blur", "encode")
# Outputs are compared as 64 px thumbnails; sound but different resamplers stay well within this.
CONTENT_TOLERANCE = 4.0
THUMB_WIDTH = 64


class Imgserve:
    """Run a chain with imgserve's pipeline as a worker does, noting its time by stage."""

    def __init__(self, chain: Sequence[str]) -> None:
        from pipeline import EncodeOptions, parse_operations

        self.operations = parse_operations(list(chain))
        self.encode = EncodeOptions(jpeg_quality=contenders.JPEG_QUALITY)
        self.stages: dict[str, list[float]] = {}

    def __call__(self, source: Path, output: Path) -> None:
        """Process one photo, as process_image does for a job's image."""
        from pipeline import process_image

        spent: dict[str, float] = {}

        def note(stage: str, seconds: float) -> None:
            spent[stage] = spent.get(stage, 0.0) + seconds

        process_image(source, output, self.operations, encode=self.encode, on_step=note)
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


def format_ms(ms: float) -> str:
    """Format milliseconds to three significant figures or more."""
    return f"{ms:.0f}" if ms >= 100 else f"{ms:.1f}" if ms >= 10 else f"{ms:.2f}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Return a Markdown table whose first two columns are left-aligned text."""
    align = [":---" if index < 2 else "---:" for index in range(len(header))]
    return [f"| {' | '.join(row)} |" for row in (header, align, *rows)]


def times_table(cells: Sequence[Cell], names: Sequence[str]) -> list[str]:
    """Return the table of median times and ratios."""
    peers = [name for name in PEERS if name in names]
    ratios = "imgserve" in names
    header = ["photo", "chain", "outputs", *(f"{name} ms" for name in names)]
    if ratios and peers:
        header.append("best peer / imgserve")
    if ratios and "floor" in names:
        header.append("floor / imgserve")
    rows = []
    for cell in cells:
        mark = " †" if cell.notes else ""
        row = [f"{cell.megapixels} MP", ", ".join(cell.chain) + mark, str(cell.outputs)]
        row += [format_ms(cell.median_ms(name)) for name in names]
        if ratios:
            ours = cell.median_ms("imgserve")
            if peers:
                best = min(peers, key=cell.median_ms)
                row.append(f"{cell.median_ms(best) / ours:.2f} ({best})")
            if "floor" in names:
                row.append(f"{cell.median_ms('floor') / ours:.2f}")
        rows.append(row)
    return markdown_table(header, rows)


def stages_table(cells: Sequence[Cell]) -> list[str]:
    """Return the table of imgserve's median time by stage."""
    header = ["photo", "chain", *(f"{stage} ms" for stage in STAGES)]
    rows = [
        [
            f"{cell.megapixels} MP",
            ", ".join(cell.chain),
            *(format_ms(cell.stages[s] * 1000) if s in cell.stages else "" for s in STAGES),
        ]
        for cell in cells
    ]
    return markdown_table(header, rows)


def footnotes(cells: Sequence[Cell], repeat: int, budget: float) -> list[str]:
    """Return the notes under the table: mismatches, cut-short cells and noise."""
    lines = [f"- † {cell.label}: {note}" for cell in cells for note in cell.notes]
    difference = max(cell.largest_difference for cell in cells)
    lines.append(
        "- Outputs checked against the first contender's: same names, sizes within 1 px and "
        f"contents within {difference:.1f} grey levels as 64 px thumbnails, unless marked †"
    )
    short = [
        f"{cell.label} ("
        + ", ".join(
            f"{name} {len(runs)}" for name, runs in cell.times.items() if len(runs) < repeat
        )
        + ")"
        for cell in cells
        if any(len(runs) < repeat for runs in cell.times.values())
    ]
    if short:
        lines.append(
            f"- Fewer timed runs, to keep to {budget:g} s per contender: " + "; ".join(short)
        )
    cell, name = max(
        ((cell, name) for cell in cells for name in cell.times), key=lambda c: c[0].spread(c[1])
    )
    if cell.spread(name):
        lines.append(
            f"- Noisiest: {name} on {cell.label}, interquartile range "
            f"{cell.spread(name):.0%} of its median"
        )
    return lines


def cpu_model() -> str:
    """Return the CPU model named in /proc/cpuinfo, or the platform's guess."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def opencv_jpeg() -> str:
    """Return the JPEG library OpenCV was built with."""
    for line in cv2.getBuildInformation().splitlines():
        name, _, version = line.strip().partition(":")
        if name == "JPEG":
            return version.strip().removeprefix("build-").replace("(ver ", "").rstrip(")")
    return "unknown JPEG library"


def imgserve_revision() -> str:
    """Return the commit measured, and whether pipeline/ differs from it."""
    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--", "pipeline"],
            cwd=root,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "unknown revision"
    return f"commit {commit or 'unknown'}" + (
        " with uncommitted pipeline/ changes" if changed else ""
    )


def load_average() -> str:
    """Return the 1, 5 and 15 minute load averages."""
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


def machine(photos: dict[int, Path], names: Sequence[str], load: str) -> list[str]:
    """Describe the machine, the libraries and the photos."""
    vips = contenders.load_pyvips()
    libvips = ".".join(str(vips.version(part)) for part in range(3))
    lines = [
        f"- Machine: {cpu_model()}, {os.cpu_count()} logical CPUs; load average {load} at start",
        f"- Python {platform.python_version()}, numpy {np.__version__}, "
        f"OpenCV {cv2.__version__} ({opencv_jpeg()}), "
        f"Pillow {PIL.__version__} (libjpeg-turbo {features.version('libjpeg_turbo')}), "
        f"pyvips {vips.__version__} (libvips {libvips})",
        f"- One thread each: cv2.getNumThreads() = {cv2.getNumThreads()}, "
        f"libvips concurrency = {vips.concurrency_get()}, Pillow is single-threaded",
    ]
    if "imgserve" in names:
        lines.append(f"- imgserve: {imgserve_revision()}")
    for megapixels, path in photos.items():
        width, height = photo_size(megapixels)
        lines.append(
            f"- {megapixels} MP photo: {width}x{height}, {path.stat().st_size / 1e6:.1f} MB "
            f"JPEG q90 ({path.name}: the seed enlarged, grain sigma {GRAIN_SIGMA:g})"
        )
    return lines


def parse_list(text: str) -> list[str]:
    """Split a comma-separated command-line list."""
    return [item.strip() for item in text.split(",") if item.strip()]


def arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pipeline", description=__doc__)
    parser.add_argument("--repeat", type=int, help="timed runs (default 5; 1 with --quick)")
    parser.add_argument(
        "--budget",
        type=float,
        default=3.0,
        help="stop timing a contender on a cell once its timed runs add up to this many "
        "seconds (default 3; there is always at least one)",
    )
    parser.add_argument("--sizes", type=parse_list, help="photo megapixels (default 1,12,24)")
    parser.add_argument("--chains", type=parse_list, help="1-based chain numbers (default all)")
    parser.add_argument(
        "--contenders",
        type=parse_list,
        default=list(CONTENDERS),
        help=f"which to run (default {','.join(CONTENDERS)})",
    )
    parser.add_argument("--seed", type=Path, default=DEFAULT_SEED, help="the photo to enlarge")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 MP, one timed run")
    args = parser.parse_args(argv)
    args.repeat = args.repeat or (1 if args.quick else 5)
    sizes = args.sizes or (["1"] if args.quick else ["1", "12", "24"])
    chains = args.chains or [str(number) for number in range(1, len(CHAINS) + 1)]
    try:
        args.sizes = [int(size) for size in sizes]
        args.chains = [CHAINS[int(number) - 1] for number in chains if int(number) >= 1]
    except (ValueError, IndexError):
        parser.error(f"--sizes takes megapixels and --chains numbers from 1 to {len(CHAINS)}")
    if args.repeat < 1 or min(args.sizes) < 1 or not args.chains:
        parser.error("--repeat, --sizes and --chains take positive numbers")
    unknown = set(args.contenders) - set(CONTENDERS)
    if unknown or not set(args.contenders) - {"floor"}:
        parser.error(f"--contenders takes some of {', '.join(CONTENDERS)}, not just floor")
    args.contenders = [name for name in CONTENDERS if name in args.contenders]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print its Markdown report."""
    args = arguments(argv)
    cv2.setNumThreads(1)
    contenders.load_pyvips()
    if "imgserve" in args.contenders:
        from pipeline import configure_opencv

        configure_opencv(1)
    started, load = time.perf_counter(), load_average()
    photos = {size: ensure_photo(size, args.seed) for size in args.sizes}
    cells: list[Cell] = []
    with tempfile.TemporaryDirectory(prefix="imgserve-bench-") as work:
        for size, photo in photos.items():
            for chain in args.chains:
                cell = Cell(size, chain)
                measure(photo, cell, args.contenders, Path(work), args.repeat, args.budget)
                cells.append(cell)
                times = ", ".join(f"{n} {format_ms(cell.median_ms(n))}" for n in cell.times)
                print(f"{cell.label}: {times} ms", file=sys.stderr, flush=True)
    runs = "1 timed run" if args.repeat == 1 else f"up to {args.repeat} timed runs"
    lines = [
        "## Pipeline benchmark",
        "",
        *machine(photos, args.contenders, load),
        f"- Median wall time in ms of {runs} after one warm-up, contenders taking turns; "
        "each run decodes the photo, runs the chain and writes every output as a JPEG q90 file",
        "",
        *times_table(cells, args.contenders),
        "",
        *footnotes(cells, args.repeat, args.budget),
        f"- Whole run: {time.perf_counter() - started:.0f} s; load average {load_average()} after",
    ]
    if "imgserve" in args.contenders:
        lines += [
            "",
            "imgserve's median time by stage (process_image's on_step; a shrink-on-load's "
            "finishing resize counts as resize; encode includes the atomic writes):",
            "",
            *stages_table(cells),
        ]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
