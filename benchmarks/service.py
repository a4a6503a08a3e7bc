"""Measure imgserve's whole service beside its own pipeline run directly, in the same run.

Run `make bench-service` (or `python -m benchmarks.service --help`): it starts a private
redis-server, the API and a worker, and prints a Markdown report on stdout, progress on
stderr. benchmarks/README.md says what each figure and verdict means.
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2

import pipeline
from benchmarks import harness
from benchmarks.harness import Meter, Span, Verdict, log, rotated
from benchmarks.images import DEFAULT_SEED, ensure_photo, photo_size, read_pixels
from benchmarks.timing import start_process
from tests.support import RedisServer, free_port
from tests.system.service import Service, make_root, service_env

PHASES = ("memory", "throughput")
SEED_CHAIN = ["split", "resize=2", "split", "resize=2"]
LEAK_CHAINS = (["resize=0.5"], ["split", "resize=0.5"], ["blur=5"], ["rotate=90", "grayscale"])
TINY = "photos/tiny-64x64.jpg"
CLIENTS = 8
PACKAGES = ("celery", "kombu", "redis", "flask", "waitress", "opencv-python-headless")
HEADER = ["workload", "contender", "images/s, 2 processes", "÷ baseline", "range"]
HEADER += ["baseline CPU ÷ its CPU", "images/s, 1 process", "2 ÷ 1 processes", "others' cores"]
folders = itertools.count()

Spans = dict[tuple[str, str, int], list[Span]]
"""The timed batches by workload, contender and number of processes."""


@dataclass(frozen=True)
class Batch:
    """Images to run with one chain: (input, output) paths relative to the storage root."""

    chain: list[str]
    images: list[tuple[str, str]]
    out: str


def batch(inputs: Sequence[str], chain: list[str]) -> Batch:
    """Return a batch of these inputs writing into a fresh folder."""
    out = f"out/{next(folders)}"
    return Batch(chain, [(source, f"{out}/{n}.jpg") for n, source in enumerate(inputs)], out)


def _run_image(source: str, output: str, chain: list[str]) -> None:
    """Run one image as a worker does: parse the chain, then process_image."""
    pipeline.process_image(source, output, pipeline.parse_operations(chain))


class DirectPool:
    """The baseline: process_image in a spawned pool set up as a worker's, a submit an image."""

    name = "direct pool"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.pool: ProcessPoolExecutor | None = None

    def start(self, processes: int) -> None:
        """Start a fresh pool of this many processes."""
        self.stop()
        spawn = multiprocessing.get_context("spawn")
        self.pool = ProcessPoolExecutor(processes, spawn, start_process, ("imgserve",))
        self.run(batch([TINY] * 4 * processes, ["resize=0.5"]))  # the warm-up

    def run(self, work: Batch) -> None:
        """Submit every image of the batch to the pool and wait for them all."""
        assert self.pool is not None, "the direct pool is not started"
        paths = [(str(self.root / source), str(self.root / out)) for source, out in work.images]
        for image in [self.pool.submit(_run_image, *path, work.chain) for path in paths]:
            image.result()

    def stop(self) -> None:
        """Shut the pool down."""
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)
            self.pool = None


class Imgserve:
    """imgserve as its users run it: the API and one worker on a redis-server, over HTTP."""

    name = "imgserve"

    def __init__(self, work: Path, root: Path) -> None:
        self.redis = RedisServer(work)
        self.env = service_env(root, REDIS_URL=self.redis.url)
        self.port = free_port()
        self.api = Service(f"http://127.0.0.1:{self.port}", root, self.env)
        self.workers = Service(self.api.url, root, self.env)

    def start(self, processes: int) -> None:
        """Start a worker of this many pool processes in place of any before, the API first."""
        self.workers.stop()
        if not self.api.processes:
            self.redis.start()
            self.api.spawn("api", "--host", "127.0.0.1", "--port", str(self.port), name="api")
        self.workers = Service(self.api.url, self.api.root, self.env)
        self.workers.spawn("worker", "--concurrency", str(processes), name="worker")
        self.api.wait_healthy()  # after the worker starts, should health come to ask for one
        deadline = time.monotonic() + 60
        while len(self.pool_pids()) < processes:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the worker did not start\n{self.workers.tail()}")
            time.sleep(0.1)
        self.run(batch([TINY] * 4 * processes, ["resize=0.5"]))  # the warm-up

    def run(self, work: Batch) -> None:
        """POST the batch as one job and long-poll it until it settles; it must succeed."""
        images = [{"input": source, "output": output} for source, output in work.images]
        job = self.api.finish(self.api.submit(images, work.chain)["id"], timeout=900)
        if job["state"] != "succeeded":
            errors = sorted({image["error"] for image in job["images"] if image["error"]})
            raise RuntimeError(f"job {job['id']} ended {job['state']}: {errors[:3]}")

    def pool_pids(self) -> list[int]:
        """Return the pids of the worker's pool processes."""
        return [child.pid for child in self.workers.worker_children()]

    def stop(self) -> None:
        """Stop the worker, the API and redis-server."""
        self.workers.stop()
        self.api.stop()
        self.redis.stop()


@dataclass(frozen=True)
class Workload:
    """A batch for the throughput table; ours is the benchmark's own case, not the issue's."""

    name: str
    chain: list[str]
    inputs: list[str]
    ours: bool = False


def workloads(photos: dict[str, list[str]], quick: bool) -> list[Workload]:
    """Return the issue's three workloads and ours: cheap images, where the queue shows most."""

    def load(kind: str, chain: list[str], count: int = 16 if quick else 200) -> Workload:
        inputs = list(itertools.islice(itertools.cycle(photos[kind]), count))
        name = f"{kind} photos x{count}, {', '.join(chain)}"
        return Workload(name, chain, inputs, ours=kind == "sample")

    half, big = ["resize=0.5"], load("12 MP", ["resize=0.1"], 12 if quick else 100)
    return [load("seed", SEED_CHAIN), load("seed", half), big, load("sample", half)]


def throughput(
    root: Path, contenders: Sequence[DirectPool | Imgserve], loads: Sequence[Workload], repeat: int
) -> Spans:
    """Time every workload on every contender with 2 and 1 processes, taking turns."""
    spans: Spans = {}
    for rep in range(repeat):
        turn = rotated(contenders, rep)
        for processes in (2, 1) if rep % 2 == 0 else (1, 2):
            for contender in contenders:
                contender.start(processes)
            for load, contender in itertools.product(loads, turn):
                work, meter = batch(load.inputs, load.chain), Meter()
                contender.run(work)
                span = meter.read()
                shutil.rmtree(root / work.out)
                spans.setdefault((load.name, contender.name, processes), []).append(span)
                done = f"{span.seconds:.2f} s, others {span.others:.2f} cores"
                log(f"{rep + 1}/{repeat}, {processes}p, {load.name}, {contender.name}: {done}")
    return spans


def throughput_report(
    spans: Spans, names: Sequence[str], loads: Sequence[Workload]
) -> tuple[list[Verdict], list[str]]:
    """Return imgserve's throughput and scaling verdicts, and the table; the first is the base."""
    verdicts, rows = [], []
    for load, name in itertools.product(loads, names):
        base, two, one = (
            spans[(load.name, n, p)] for n, p in ((names[0], 2), (name, 2), (name, 1))
        )
        rate, rate_one = (
            len(load.inputs) / statistics.median(s.seconds for s in r) for r in (two, one)
        )
        ratios = [b.seconds / s.seconds for b, s in zip(base, two, strict=True)]
        ratio, scaling = statistics.median(ratios), rate / rate_one
        cpu = statistics.median(b.cpu / s.cpu for b, s in zip(base, two, strict=True))
        others = statistics.median(s.others for s in two + one)
        spread = f"{min(ratios):.2f}-{max(ratios):.2f}"
        figures = (f"{rate:.1f}", f"{ratio:.2f}", spread, f"{cpu:.2f}", f"{rate_one:.1f}")
        rows.append([load.name, name, *figures, f"{scaling:.2f}", f"{others:.2f}"])
        if name == names[0]:
            rows[-1][3:6] = ["", "", ""]  # the baseline against itself
        if name == Imgserve.name:
            mark = " (ours)" if load.ours else ""
            figure = f"throughput ÷ {names[0]}, {load.name}"
            verdicts.append(Verdict(figure, f"{ratio:.2f}", f">= 0.9{mark}", ratio >= 0.9))
            figure = f"scaling 1 -> 2 processes, {load.name}"
            verdicts.append(Verdict(figure, f"{scaling:.2f}x", f">= 1.8x{mark}", scaling >= 1.8))
    return verdicts, ["### Throughput and scaling", "", *harness.markdown_table(HEADER, rows), ""]


def status_mb(pid: int, field: str) -> float:
    """Return a memory figure of /proc/<pid>/status (VmRSS, VmHWM) in MB."""
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return next(int(line.split()[1]) for line in lines if line.startswith(f"{field}:")) / 1e3


def memory(service: Imgserve, photos: dict[str, list[str]], quick: bool) -> list[Verdict]:
    """Peak RSS of the pool process that runs a big JPEG; the pool's RSS after 100 and 1000 jobs."""
    width, height = photo_size(12 if quick else 50)
    decoded, verdicts = width * height * 3 / 1e6, []
    for chain, limit in (["resize=0.1"], 0.25), (["blur=25"], 2.5):
        pids = service.pool_pids()
        for pid in pids:
            Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM starts again from VmRSS
        before = {pid: status_mb(pid, "VmRSS") for pid in pids}
        service.run(batch(photos["big"], chain))
        growth = max(status_mb(pid, "VmHWM") - before[pid] for pid in pids)
        measured, target = f"{growth:.0f} MB = {growth / decoded:.2f}x decoded", f"<= {limit}x"
        figure = f"peak RSS growth, {width}x{height} JPEG, {chain[0]}"
        verdicts.append(Verdict(figure, measured, target + " decoded", growth <= limit * decoded))
    first, total = (20, 100) if quick else (100, 1000)
    seeds, chains = itertools.cycle(photos["seed"]), itertools.cycle(LEAK_CHAINS)
    jobs = [batch([next(seeds)], next(chains)) for _ in range(total)]
    rss = []
    with ThreadPoolExecutor(CLIENTS) as clients:
        for part in jobs[:first], jobs[first:]:
            list(clients.map(service.run, part))
            rss.append(sum(status_mb(pid, "VmRSS") for pid in service.pool_pids()))
    growth, figure = rss[1] / rss[0] - 1, f"pool RSS after {total} jobs vs after {first}"
    measured = f"{rss[0]:.0f} -> {rss[1]:.0f} MB ({growth:+.1%})"
    return [*verdicts, Verdict(figure, measured, "within 10%", abs(growth) <= 0.10)]


def make_photos(work: Path, quick: bool) -> tuple[Path, dict[str, list[str]]]:
    """Make a storage root of the seed and sample photos, 12 MP ones, a big one and a tiny one."""
    samples = sorted((harness.REPO / "examples/images").glob("*.jpg"))
    seeds = sorted(DEFAULT_SEED.parent.glob("cyclo[1-4].jpg")) or samples
    twelve = [ensure_photo(12, seed) for seed in seeds]
    big, tiny = ensure_photo(12 if quick else 50, seeds[0]), work / Path(TINY).name
    cv2.imwrite(str(tiny), cv2.resize(read_pixels(seeds[0]), (64, 64)))
    root = make_root(work, sorted({*seeds, *samples, *twelve, big, tiny}))
    found = {"seed": seeds, "sample": samples, "12 MP": twelve, "big": [big]}
    return root, {kind: [f"photos/{path.name}" for path in paths] for kind, paths in found.items()}


def arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.service", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smoke run: small batches, one turn")
    parser.add_argument("--repeat", type=int, help="throughput repetitions (default 3)")
    parser.add_argument("--phases", default=",".join(PHASES), help=f"some of {','.join(PHASES)}")
    parser.add_argument("--work", type=Path, help="folder for the storage root and the logs")
    parser.add_argument("--keep", action="store_true", help="keep the work folder and its logs")
    args = parser.parse_args(argv)
    args.repeat = args.repeat or (1 if args.quick else 3)
    args.phases = args.phases.split(",")
    if args.repeat < 1 or not set(args.phases) <= set(PHASES):
        parser.error(f"--repeat takes a positive number, --phases some of {','.join(PHASES)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the service benchmark and print its report."""
    args = arguments(argv)
    load, started = harness.load_average(), time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="imgserve-bench-service-", dir=args.work))
    root, photos = make_photos(work, args.quick)
    direct, service = DirectPool(root), Imgserve(work, root)
    verdicts: list[Verdict] = []
    sections: list[str] = []
    try:
        service.start(2)
        if "memory" in args.phases:
            verdicts = memory(service, photos, args.quick)
        if "throughput" in args.phases:
            loads = workloads(photos, args.quick)
            spans = throughput(root, [direct, service], loads, args.repeat)
            found, sections = throughput_report(spans, [direct.name, service.name], loads)
            verdicts = found + verdicts
    finally:
        direct.stop()
        service.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    seeds = ", ".join(Path(seed).name for seed in photos["seed"])
    run = f"repetitions {args.repeat}, {time.perf_counter() - started:.0f} s"
    head = [*harness.machine(load, PACKAGES, ("app", "worker", "pipeline")), f"- Seeds: {seeds}"]
    head.append(f"- Run: {run}" + (" (--quick)" if args.quick else ""))
    tables = [*harness.verdict_table(verdicts), "", *sections]
    print("\n".join(["## Service benchmark", "", *head, "", *tables]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
