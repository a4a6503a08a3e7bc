"""What the benchmarks share: progress, tables, verdicts, the machine's description, a CPU meter."""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import TypeVar

import psutil

REPO = Path(__file__).resolve().parents[1]
T = TypeVar("T")


def log(message: str) -> None:
    """Show progress on stderr."""
    print(time.strftime("[%H:%M:%S]"), message, file=sys.stderr, flush=True)


def rotated(items: Sequence[T], turn: int) -> list[T]:
    """Return the items starting at the turn's one, so that drift falls on all of them alike."""
    first = turn % len(items)
    return [*items[first:], *items[:first]]


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Return a Markdown table whose first two columns are left-aligned text."""
    align = [":---" if index < 2 else "---:" for index in range(len(header))]
    return [f"| {' | '.join(row)} |" for row in (header, align, *rows)]


@dataclass(frozen=True)
class Verdict:
    """One figure, its target and whether it is met."""

    figure: str
    measured: str
    target: str
    met: bool


def verdict_table(verdicts: Sequence[Verdict]) -> list[str]:
    """Return the table of figures, targets and verdicts."""
    rows = [[v.figure, v.measured, v.target, "MET" if v.met else "NOT MET"] for v in verdicts]
    return markdown_table(["figure", "measured", "target", "verdict"], rows)


def load_average() -> str:
    """Return the 1, 5 and 15 minute load averages."""
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


def cpu_model() -> str:
    """Return the CPU model named in /proc/cpuinfo, or the platform's guess."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return platform.processor() or "unknown CPU"


def revision(*folders: str) -> str:
    """Return the commit measured, saying whether these folders differ from it."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout

    changed = git("status", "--porcelain", "--", *folders).strip()
    mark = f" with uncommitted changes in {', '.join(folders)}" if changed else ""
    return f"commit {git('rev-parse', '--short', 'HEAD').strip() or 'unknown'}{mark}"


def machine(load: str, packages: Sequence[str], folders: Sequence[str]) -> list[str]:
    """Describe the machine, its load at the start and now, the versions and the commit."""
    versions = ", ".join(f"{name} {version(name)}" for name in packages)
    return [
        f"- Machine: {cpu_model()}, {os.cpu_count()} logical CPUs, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB",
        f"- Load average: {load} at the start, {load_average()} at the end",
        f"- Python {platform.python_version()}, {versions}",
        f"- imgserve: {revision(*folders)}",
    ]


def busy_seconds() -> float:
    """Return the CPU seconds every process on the machine has used since boot."""
    ticks = [int(n) for n in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    # user nice system idle iowait irq softirq steal: all but idle and iowait are busy.
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def own_seconds() -> float:
    """Return the CPU seconds this process and every live process below it have used."""
    me = psutil.Process()
    total = 0.0
    for process in [me, *me.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            total += times.user + times.system
    return total


@dataclass(frozen=True)
class Span:
    """What a span of time cost: wall seconds, our CPU seconds, other processes' cores."""

    seconds: float
    cpu: float
    others: float


class Meter:
    """Measures a span: its wall time, this benchmark's CPU and the cores others used."""

    def __init__(self) -> None:
        self.wall, self.own, self.busy = time.perf_counter(), own_seconds(), busy_seconds()

    def read(self) -> Span:
        """Return what the span since the meter was made cost."""
        wall, own = time.perf_counter() - self.wall, own_seconds() - self.own
        return Span(wall, own, max(0.0, (busy_seconds() - self.busy - own) / wall))
