"""The service benchmark's throughput and scaling runs: the service beside a direct pool.

Each batch runs once directly, in a spawned ProcessPoolExecutor whose processes call
``configure_opencv(1)`` and ``keep_large_allocations()`` as imgserve's worker processes do,
and once through the service: one POST of the whole batch as a job (or ``--jobs`` jobs),
then ``GET /jobs/<id>?wait=30`` until it settles. The two take turns, the order swapped
every repetition, with 2 and then 1 worker processes (swapped too). For each batch the CPU
that every part of the service used is read with psutil, and the CPU that other processes
on the machine used from /proc/stat.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pipeline
from benchmarks.report import markdown_table
from benchmarks.service_client import settle, submit, succeeded
from benchmarks.service_processes import Others, cpu_seconds, wait_for_quiet
from worker.memory import keep_large_allocations

if TYPE_CHECKING:
    from benchmarks.service import Bench

TINY = "photos/tiny-64x64.jpg"
SEED_CHAIN = ["split", "resize=2", "split", "resize=2"]
PARTS = ("pool", "worker main", "API", "Redis", "client")


def tiny_job(output: str) -> dict[str, Any]:
    """Return the body of a one-image job: the 64x64 JPEG, resize=0.5."""
    return {"images": [{"input": TINY, "output": output}], "operations": ["resize=0.5"]}


@dataclass(frozen=True)
class Workload:
    """A batch of images with one chain."""

    label: str
    chain: list[str]
    inputs: list[str]
    issue: bool = True
    """One the issue names (False: this benchmark's own, harder case)."""


@dataclass
class Runs:
    """The timed batches of one workload at one pool size."""

    images: int
    seconds: dict[str, list[float]] = field(default_factory=lambda: {"direct": [], "service": []})
    others: dict[str, list[float]] = field(default_factory=lambda: {"direct": [], "service": []})
    direct_cpu: list[float] = field(default_factory=list)
    service_cpu: list[dict[str, float]] = field(default_factory=list)

    def rate(self, kind: str) -> float:
        """Return the median images per second of the direct or service batches."""
        return self.images / statistics.median(self.seconds[kind])

    def ratios(self) -> list[float]:
        """Return service over direct throughput, repetition by repetition."""
        return [d / s for d, s in zip(self.seconds["direct"], self.seconds["service"], strict=True)]

    def cpu_ms(self) -> tuple[float, dict[str, float]]:
        """Return the median CPU ms per image of the direct pool, and of each service part."""
        direct = 1000 * statistics.median(self.direct_cpu) / self.images
        parts = {
            k: 1000 * statistics.median(c[k] for c in self.service_cpu) / self.images for k in PARTS
        }
        return direct, parts


def workloads(
    quick: bool, seeds: list[str], twelve: list[str], samples: list[str]
) -> list[Workload]:
    """Return the workloads: the seed photos with two chains, 12 MP photos, and cheap photos.

    Three of the four seed photos are progressive JPEGs, 10-14 ms to decode at 1 MP; the
    project's samples (examples/images, the same sizes) are baseline JPEGs, 3 ms an image
    with resize=0.5: the case where the queue's own cost shows most.
    """
    count = 16 if quick else 200
    small = [seeds[n % len(seeds)] for n in range(count)]
    cheap = [samples[n % len(samples)] for n in range(count)]
    big = [twelve[n % len(twelve)] for n in range(12 if quick else 100)]
    return [
        Workload(f"seed photos x{len(small)}, {', '.join(SEED_CHAIN)}", SEED_CHAIN, small),
        Workload(f"seed photos x{len(small)}, resize=0.5", ["resize=0.5"], small),
        Workload(f"12 MP photos x{len(big)}, resize=0.1", ["resize=0.1"], big),
        Workload(f"sample photos x{len(cheap)}, resize=0.5", ["resize=0.5"], cheap, issue=False),
    ]


def _init_direct() -> None:
    """Set each direct pool process up as worker/tasks.py's _init_process sets up a worker's."""
    pipeline.configure_opencv(1)
    keep_large_allocations()


def _direct_image(source: str, target: str, chain: list[str]) -> None:
    """Run one image as a worker does: parse the chain, then process_image."""
    pipeline.process_image(source, target, pipeline.parse_operations(chain))


def direct_pool(bench: Bench, size: int) -> ProcessPoolExecutor:
    """Return a warm pool of this size (spawned, so OpenCV starts fresh in each process)."""
    if size not in bench.pools:
        pool = ProcessPoolExecutor(size, multiprocessing.get_context("spawn"), _init_direct)
        out, tiny = bench.root / bench.out("direct"), str(bench.root / TINY)
        warm = [
            pool.submit(_direct_image, tiny, f"{out}/{n}.jpg", ["resize=0.5"])
            for n in range(4 * size)
        ]
        for done in warm:
            done.result()
        bench.pools[size] = pool
    return bench.pools[size]


def time_direct(bench: Bench, workload: Workload, runs: Runs, size: int) -> float:
    """Run a workload in the direct pool; record the pool's CPU; return wall seconds."""
    pool = direct_pool(bench, size)
    out = bench.root / bench.out("direct")
    pids = list(pool._processes)  # the executor's own processes, for CPU accounting
    cpu, started = cpu_seconds(pids), time.perf_counter()
    images = [
        pool.submit(_direct_image, str(bench.root / source), f"{out}/{n}.jpg", workload.chain)
        for n, source in enumerate(workload.inputs)
    ]
    for image in images:
        image.result()
    seconds = time.perf_counter() - started
    runs.direct_cpu.append(cpu_seconds(pids) - cpu)
    shutil.rmtree(out, ignore_errors=True)
    return seconds


def time_service(bench: Bench, workload: Workload, runs: Runs) -> float:
    """Run a workload through the service; record CPU by part; return wall seconds."""
    out, client, count = bench.out("service"), bench.client, bench.args.jobs
    images = [
        {"input": source, "output": f"{out}/{n}.jpg"} for n, source in enumerate(workload.inputs)
    ]
    parts = {**bench.procs.service_pids(), "client": [os.getpid()]}
    before = {name: cpu_seconds(pids) for name, pids in parts.items()}
    started = time.perf_counter()
    jobs = [submit(client, images[k::count], workload.chain) for k in range(count)]
    gets = 0
    for job in jobs:
        settled, polls = settle(client, job)
        succeeded(settled)
        gets += polls
    seconds = time.perf_counter() - started
    cpu = {name: cpu_seconds(pids) - before[name] for name, pids in parts.items()}
    runs.service_cpu.append({**cpu, "GETs": gets})
    shutil.rmtree(bench.root / out, ignore_errors=True)
    return seconds


def throughput_phase(bench: Bench, loads: list[Workload]) -> dict[tuple[int, str], Runs]:
    """Time every workload directly and through the service, with 2 and 1 worker processes."""
    runs = {(size, w.label): Runs(len(w.inputs)) for size in (2, 1) for w in loads}
    for rep in range(bench.args.repeat):
        for size in (2, 1) if rep % 2 == 0 else (1, 2):
            if len(bench.procs.pool_pids()) != size:
                bench.start_workers(size)
            for workload in loads:
                cell = runs[(size, workload.label)]
                for kind in ("direct", "service") if rep % 2 == 0 else ("service", "direct"):
                    wait_for_quiet(bench.args.quiet)
                    others = Others()
                    if kind == "direct":
                        seconds = time_direct(bench, workload, cell, size)
                    else:
                        seconds = time_service(bench, workload, cell)
                    cell.others[kind].append(others.cores())
                    cell.seconds[kind].append(seconds)
                direct, service = (cell.seconds[k][-1] for k in ("direct", "service"))
                busy = "/".join(f"{cell.others[k][-1]:.2f}" for k in ("direct", "service"))
                bench.log(
                    f"rep {rep + 1}, {size} processes, {workload.label}: direct "
                    f"{direct:.2f} s, service {service:.2f} s; others used {busy} cores"
                )
    return runs


def throughput_report(
    bench: Bench, runs: dict[tuple[int, str], Runs], loads: list[Workload]
) -> None:
    """Add the throughput, scaling and CPU tables, and their figures."""
    rows, scaling, cpu_rows = [], [], []
    for workload in loads:
        two, one = runs[(2, workload.label)], runs[(1, workload.label)]
        for size, cell in ((2, two), (1, one)):
            ratios = cell.ratios()
            others = "/".join(f"{statistics.median(cell.others[k]):.2f}" for k in cell.others)
            rows.append(
                [
                    workload.label,
                    str(size),
                    f"{cell.rate('direct'):.1f}",
                    f"{cell.rate('service'):.1f}",
                    f"{statistics.median(ratios):.2f}",
                    ", ".join(f"{r:.2f}" for r in ratios),
                    others,
                ]
            )
        ratio = statistics.median(two.ratios())
        ours = "" if workload.issue else " (ours)"
        bench.figure(
            f"1. throughput ratio, {workload.label}", f"{ratio:.2f}", ">= 0.9" + ours, ratio >= 0.9
        )
        service, direct = (two.rate(k) / one.rate(k) for k in ("service", "direct"))
        scaling.append(
            [
                workload.label,
                "",
                f"{one.rate('service'):.1f}",
                f"{two.rate('service'):.1f}",
                f"{service:.2f}",
                f"{direct:.2f}",
            ]
        )
        bench.figure(
            f"3. scaling 1 -> 2 processes, {workload.label}",
            f"{service:.2f}x (direct pool {direct:.2f}x)",
            ">= 1.8x" + ours,
            service >= 1.8,
        )
        direct_ms, parts = two.cpu_ms()
        total = sum(parts.values())
        gets = statistics.median(c["GETs"] for c in two.service_cpu)
        cpu_rows.append(
            [
                workload.label,
                "",
                f"{direct_ms:.1f}",
                *(f"{parts[k]:.1f}" for k in PARTS),
                f"{total:.1f}",
                f"{direct_ms / total:.2f}",
                f"{gets:.0f}",
            ]
        )
    bench.lines += [
        "### Throughput (images/s)",
        "",
        *markdown_table(
            [
                "workload",
                "processes",
                "direct pool",
                "service",
                "service / direct",
                "per repetition",
                "others' cores (direct/service)",
            ],
            rows,
        ),
        "",
        f"- The service gets each batch as {bench.args.jobs} job(s), one POST each, then "
        "`GET /jobs/<id>?wait=30` until it settles: timed from the first POST to the answer that "
        "shows it settled. One job is how a batch client uses imgserve, and it exercises the "
        "job window (claim_next, enqueue the next task). The direct pool is a spawned "
        "ProcessPoolExecutor of the same size, its processes set up as worker/tasks.py's "
        "`_init_process` sets up a worker's (`configure_opencv(1)`, `keep_large_allocations()`), "
        "one `submit` per image, timed from the first "
        "submit to the last result. Both write JPEG q90 files (fsynced) into the same root.",
        "- Others' cores: CPU used meanwhile by processes other than this benchmark's (from "
        "/proc/stat, steal included), median over the repetitions. The machine has 2 cores.",
        "",
        "### Scaling (service images/s)",
        "",
        *markdown_table(
            ["workload", "", "1 process", "2 processes", "service 2 / 1", "direct pool 2 / 1"],
            scaling,
        ),
        "",
        "### Where the CPU goes, 2 processes (CPU ms per image, medians)",
        "",
        *markdown_table(
            [
                "workload",
                "",
                "direct pool",
                "service: pool processes",
                "worker main",
                "API",
                "Redis",
                "client",
                "service total",
                "direct / service CPU",
                "GETs a batch",
            ],
            cpu_rows,
        ),
        "",
        "- With every part on the same 2 cores, the work is CPU-bound, so `direct / service "
        "CPU` is about the best throughput ratio the service can reach: every CPU ms the API, "
        "the worker's main process, Redis and the client spend is taken from the pool processes.",
        "",
    ]
