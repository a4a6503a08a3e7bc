"""Time imgserve's pipeline against naive OpenCV, Pillow, pyvips and the codec floor.

Run `make bench` (or `python -m benchmarks.pipeline --help`): each contender runs in its
own process on one thread, warms up (its outputs checked against imgserve's), then the
contenders take turns; the report, in Markdown, goes to stdout, progress to stderr.
benchmarks/README.md says how each contender runs and what the ratios mean.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import cv2

from benchmarks.contenders import PEERS
from benchmarks.harness import load_average, log, machine, markdown_table
from benchmarks.images import DEFAULT_SEED, ensure_photo, ensure_variant, photo_size
from benchmarks.timing import Cell, contender_processes, measure

CHAINS: tuple[tuple[str, ...], ...] = (
    ("split", "resize=2", "split", "resize=2"),
    ("resize=0.5",),
    ("resize=0.1",),
    ("blur=25",),
    ("split", "resize=1.5", "blur=25"),
)
CONTENDERS = ("imgserve", *PEERS, "floor")
# Photos that are not sRGB JPEGs, against pyvips doing the same: alpha resampled
# premultiplied and kept in a PNG; a Display P3 profile converted to sRGB.
VARIANTS = (("rgba", "RGBA PNG"), ("p3", "Display P3 JPEG"))
VARIANT_CHAIN = ("resize=0.5",)
VARIANT_CONTENDERS = ("imgserve", "pyvips")
STAGES = ("decode", "split", "resize", "blur", "encode")
PACKAGES = ("numpy", "opencv-python-headless", "pillow", "pyvips", "pyvips-binary")


def parse_list(text: str) -> list[str]:
    """Split a comma-separated command-line list."""
    return [item.strip() for item in text.split(",") if item.strip()]


def arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pipeline", description=__doc__)
    parser.add_argument("--repeat", type=int, help="timed runs (default 5; 1 with --quick)")
    budget = "seconds of timed runs a contender and cell, then no more (default 3; at least 1 run)"
    parser.add_argument("--budget", type=float, default=3.0, help=budget)
    parser.add_argument("--sizes", type=parse_list, help="photo megapixels (default 1,12,24)")
    parser.add_argument("--chains", type=parse_list, help="1-based chain numbers (default all)")
    which = f"which to run (default {','.join(CONTENDERS)})"
    parser.add_argument("--contenders", type=parse_list, default=list(CONTENDERS), help=which)
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


def format_ms(ms: float) -> str:
    """Format milliseconds to three significant figures or more."""
    return f"{ms:.0f}" if ms >= 100 else f"{ms:.1f}" if ms >= 10 else f"{ms:.2f}"


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
        row = [cell.photo, ", ".join(cell.chain) + mark, str(cell.outputs)]
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
    rows = []
    for cell in cells:
        times = [format_ms(cell.stages[s] * 1000) if s in cell.stages else "" for s in STAGES]
        rows.append([cell.photo, ", ".join(cell.chain), *times])
    return markdown_table(header, rows)


def footnotes(cells: Sequence[Cell], repeat: int) -> list[str]:
    """Return the notes under the table: mismatches, the largest difference, cut-short cells."""
    lines = [f"- † {cell.label}: {note}" for cell in cells for note in cell.notes]
    difference = max(cell.largest_difference for cell in cells)
    lines.append(f"- Largest difference from the first contender's outputs: {difference:.1f}")
    short = [
        f"{cell.label}: {name} {len(runs)}"
        for cell in cells
        for name, runs in cell.times.items()
        if len(runs) < repeat
    ]
    if short:
        lines.append("- Fewer timed runs (--budget): " + "; ".join(short))
    return lines


def opencv_jpeg() -> str:
    """Return the JPEG library OpenCV was built with."""
    for line in cv2.getBuildInformation().splitlines():
        name, _, version = line.strip().partition(":")
        if name == "JPEG":
            return version.strip().removeprefix("build-").replace("(ver ", "").rstrip(")")
    return "unknown JPEG library"


def photos(paths: dict[int, Path]) -> list[str]:
    """Describe the photos."""
    return [
        f"- {megapixels} MP photo: {'x'.join(map(str, photo_size(megapixels)))}, "
        f"{path.stat().st_size / 1e6:.1f} MB ({path.name})"
        for megapixels, path in paths.items()
    ]


def processes(setups: dict[str, str]) -> list[str]:
    """Describe how each contender's process was set up."""
    lines = [f"- Process of {name}: {setup}" for name, setup in setups.items()]
    return [*lines, f"- OpenCV's JPEG library: {opencv_jpeg()}"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print its Markdown report."""
    args = arguments(argv)
    # This process only hands out the runs and compares outputs; it times nothing itself.
    cv2.setNumThreads(1)
    started, load = time.perf_counter(), load_average()
    paths = {size: ensure_photo(size, args.seed) for size in args.sizes}
    cells: list[Cell] = []
    with (
        tempfile.TemporaryDirectory(prefix="imgserve-bench-") as work,
        contender_processes(args.contenders) as running,
    ):
        for size, photo in paths.items():
            for chain in args.chains:
                cell = Cell(size, chain)
                measure(photo, cell, running, Path(work), (args.repeat, args.budget))
                cells.append(cell)
                times = ", ".join(f"{n} {format_ms(cell.median_ms(n))}" for n in cell.times)
                log(f"{cell.label}: {times} ms")
        variants: list[Cell] = []
        pair = {name: running[name] for name in VARIANT_CONTENDERS if name in running}
        for size in args.sizes if len(pair) == len(VARIANT_CONTENDERS) else ():
            for kind, label in VARIANTS:
                cell = Cell(size, VARIANT_CHAIN, label)
                source = ensure_variant(size, kind, args.seed)
                measure(source, cell, pair, Path(work), (args.repeat, args.budget))
                variants.append(cell)
                log(f"{cell.label}: {cell.median_ms('imgserve'):.1f} ms imgserve")
        setups = {name: process.setup for name, process in running.items()}
    elapsed = time.perf_counter() - started
    runs = "1 timed run" if args.repeat == 1 else f"up to {args.repeat} timed runs"
    head = [*machine(load, PACKAGES, ("pipeline",)), *photos(paths), *processes(setups)]
    head.append(f"- Median wall time in ms of {runs} after one warm-up; whole run {elapsed:.0f} s")
    table = [*times_table(cells, args.contenders), "", *footnotes(cells, args.repeat)]
    lines = ["## Pipeline benchmark", "", *head, "", *table]
    if variants:
        lines += ["", "Alpha and colour profiles:", ""]
        lines += [*times_table(variants, VARIANT_CONTENDERS), "", *footnotes(variants, 1)]
    if "imgserve" in args.contenders:
        lines += ["", "imgserve's median time by stage:", "", *stages_table(cells)]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
