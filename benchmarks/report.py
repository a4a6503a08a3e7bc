"""Write the benchmark's report: the machine, the tables and the notes, in Markdown."""

from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import PIL
from PIL import features

from benchmarks import contenders
from benchmarks.images import GRAIN_SIGMA, photo_size
from benchmarks.timing import PEERS, Cell, ProcessSettings

STAGES = ("decode", "split", "resize", "blur", "encode")


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


def method(settings: dict[str, ProcessSettings]) -> list[str]:
    """Describe the contenders' processes and how each was set up."""
    others = [name for name in settings if name != "imgserve"]
    lines = ["- Each contender runs in its own process, spawned once and sent its runs in turns"]
    if "imgserve" in settings:
        kept = settings["imgserve"].keeps_large_allocations
        lines[0] += (
            ". imgserve is measured as its worker processes run: its process first calls "
            "pipeline.configure_opencv(1) and worker.memory.keep_large_allocations(), as "
            "worker/tasks.py's _init_process does (glibc mallopt, so large buffers stay in "
            f"the heap: {'applied' if kept else 'NOT applied, no glibc'})"
        )
    if others:
        lines[0] += f"; the others ({', '.join(others)}) keep the C library's allocator defaults"
    threads = ", ".join(str(n) for n in sorted({s.opencv_threads for s in settings.values()}))
    vips = settings["pyvips"].vips_concurrency if "pyvips" in settings else None
    lines.append(
        f"- One thread each: cv2.getNumThreads() = {threads} in every process"
        + (f", libvips concurrency = {vips}" if vips is not None else "")
        + (", Pillow is single-threaded" if "Pillow" in settings else "")
    )
    return lines
