"""The pipeline benchmark's report: the photos, the processes, the tables and their notes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2

from benchmarks.harness import markdown_table
from benchmarks.images import photo_size
from benchmarks.timing import PEERS, Cell

STAGES = ("decode", "split", "resize", "blur", "encode")


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
    rows = [
        [
            cell.photo,
            ", ".join(cell.chain),
            *(format_ms(cell.stages[s] * 1000) if s in cell.stages else "" for s in STAGES),
        ]
        for cell in cells
    ]
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
