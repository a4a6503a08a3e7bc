"""Measure what the queue costs: imgserve's whole service beside its own pipeline run directly.

Run `make bench-service` (or `python -m benchmarks.service --help`). It starts its own
redis-server, the API and a worker, and an empty-task Celery worker to compare with, all on
loopback, and measures:

1. throughput: images/s through the service (a batch submitted over HTTP as one job, followed
   with the long-poll until it settles) over images/s of ``pipeline.process_image`` in a
   ProcessPoolExecutor of the same size on the same images, for three workloads;
2. small-job latency: POST to ``succeeded`` of one-image jobs of a 64x64 JPEG, beside the
   round trip of an empty Celery task on the same Redis;
3. scaling: the throughput runs again with 1 worker process instead of 2;
4. memory: a pool process's peak RSS on a 50 MP JPEG, and the pool's RSS after 100 and 1000
   jobs;
5. the API under load: GET /jobs/<id> and POST /jobs from 8 clients while the workers are busy.

The report (Markdown) goes to stdout, progress to stderr. Throughput batches take turns
(direct then service, the order swapped every repetition; 2 then 1 worker processes, swapped
too) so that the shared machine's drift falls on both alike, and the CPU that other processes
on the machine used during each batch is measured and shown beside it.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

import cv2
import psutil
import redis
import requests
from PIL import Image

from benchmarks.images import DEFAULT_SEED, ensure_photo, photo_size
from benchmarks.report import cpu_model, load_average, markdown_table, opencv_jpeg
from benchmarks.service_client import (
    CLIENTS,
    WAIT,
    Client,
    hammer,
    percentile,
    run_job,
    run_jobs,
    settle,
    submit,
    succeeded,
    timestamp,
)
from benchmarks.service_processes import (
    REPO,
    Others,
    Processes,
    cpu_seconds,
    empty,
    reset_peak,
    status_kb,
)
from benchmarks.service_throughput import (
    TINY,
    throughput_phase,
    throughput_report,
    tiny_job,
    workloads,
)

LEAK_CHAINS = (["resize=0.5"], ["split", "resize=0.5"], ["blur=5"], ["rotate=90", "grayscale"])


@dataclass(frozen=True)
class Figure:
    """One line of the summary: what was measured, the target and whether it is met."""

    name: str
    measured: str
    target: str
    met: bool


@dataclass
class Bench:
    """What the phases share: options, storage root, processes, client, report so far."""

    args: argparse.Namespace
    root: Path
    procs: Processes
    client: Client = field(init=False)
    pools: dict[int, ProcessPoolExecutor] = field(default_factory=dict)
    figures: list[Figure] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    counter: Iterator[int] = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        self.client = Client(self.procs.url)

    def log(self, message: str) -> None:
        """Show progress on stderr."""
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    def figure(self, name: str, measured: str, target: str, met: bool) -> None:
        """Add a line to the summary."""
        self.figures.append(Figure(name, measured, target, met))

    def out(self, kind: str) -> str:
        """Return a fresh output folder, relative to the root."""
        return f"out/{kind}{next(self.counter)}"

    def start_workers(self, concurrency: int) -> None:
        """Start a worker with this many pool processes and run a warm-up job through it."""
        self.log(f"starting a worker with {concurrency} pool processes")
        self.procs.start_workers(concurrency)
        warm = [{"input": TINY, "output": f"{self.out('warm')}/{n}.jpg"} for n in range(8)]
        run_job(self.client, warm, ["resize=0.5"])


# -- latency, memory, the API ----------------------------------------------------------------


def time_one_job(bench: Bench, n: int, *, in_post: bool = False) -> dict[str, float]:
    """Run a one-image job of the 64x64 JPEG; return where its time went, in seconds.

    in_post: wait in the POST (?wait=) rather than in a GET after it.
    """
    image = [{"input": TINY, "output": f"out/latency/{'p' if in_post else 'g'}{n}.jpg"}]
    started = time.time()
    posted = submit(bench.client, image, ["resize=0.5"], WAIT if in_post else 0)
    answered = time.time()
    job, polls = settle(bench.client, posted)
    seen = time.time()
    read = time.perf_counter()
    if bench.client.request("GET", f"/jobs/{job['id']}")[0] != 200:
        raise RuntimeError(f"GET /jobs/{job['id']} failed")
    read = time.perf_counter() - read
    created, begun, ended = (
        timestamp(succeeded(job)[k]) for k in ("created_at", "started_at", "finished_at")
    )
    return {
        "total": seen - started,
        "post": answered - started,
        "validate": created - started,
        "queued": begun - created,
        "running": ended - begun,
        "noticed": seen - ended,
        "GETs": polls,
        "read": read,
    }


def time_through_requests(bench: Bench, session: requests.Session, n: int) -> float:
    """Run a one-image job as time_one_job does in the POST, with requests; return seconds."""
    body = tiny_job(f"out/latency/r{n}.jpg")
    started = time.perf_counter()
    response = session.post(f"{bench.procs.url}/jobs?wait={WAIT}", json=body, timeout=WAIT + 30)
    succeeded(response.json())
    return time.perf_counter() - started


def time_empty_task() -> float:
    """Return the round trip of one empty Celery task, in seconds."""
    started = time.perf_counter()
    empty.apply_async().get(timeout=30)
    return time.perf_counter() - started


def latency_phase(bench: Bench) -> None:
    """Time one-image jobs POST to succeeded beside empty Celery tasks, in alternating blocks."""
    total = 50 if bench.args.quick else 500
    block = min(25, total)
    session = requests.Session()
    for n in range(10):  # warm-up: connections, and every process of both workers
        time_empty_task()
        time_one_job(bench, n)
        time_one_job(bench, n, in_post=True)
        time_through_requests(bench, session, n)
    others = Others()
    jobs: list[dict[str, float]] = []
    in_post: list[dict[str, float]] = []
    tasks: list[float] = []
    through_requests: list[float] = []
    while len(jobs) < total:
        in_post += [time_one_job(bench, len(jobs) + n, in_post=True) for n in range(block)]
        jobs += [time_one_job(bench, len(jobs) + n) for n in range(block)]
        tasks += [time_empty_task() for _ in range(block)]
        through_requests += [
            time_through_requests(bench, session, len(jobs) + n) for n in range(block)
        ]
    busy = others.cores()
    floors = 60 if bench.args.quick else 300
    floor = own_work(bench, floors)  # the workers are idle meanwhile
    bench.log(f"latency: {total} jobs each way, {total} empty tasks")
    ours, theirs = [j["total"] * 1000 for j in in_post], [t * 1000 for t in tasks]
    two_requests = [j["total"] * 1000 for j in jobs]
    ratio = percentile(ours, 50) / percentile(theirs, 50)
    bench.figure(
        "2. small-job latency p50, imgserve (POST ?wait=) / empty task",
        f"{percentile(ours, 50):.1f} / {percentile(theirs, 50):.1f} ms = {ratio:.2f}x",
        "<= 2x",
        ratio <= 2,
    )
    also = percentile(two_requests, 50) / percentile(theirs, 50)
    bench.figure(
        "2. small-job latency p50, imgserve (POST, then GET ?wait=) / empty task",
        f"{percentile(two_requests, 50):.1f} / {percentile(theirs, 50):.1f} ms = {also:.2f}x",
        "<= 2x",
        also <= 2,
    )
    ms = {part: 1000 * statistics.median(j[part] for j in jobs) for part in jobs[0]}
    own, empty = floor["all"] - floor["read"] + ms["read"], percentile(theirs, 50)
    one = {part: 1000 * statistics.median(j[part] for j in in_post) for part in in_post[0]}
    gets = statistics.median(j["GETs"] for j in jobs)
    rows = [
        [
            f"imgserve one-image job ({total})",
            "POST ?wait=30, answered once succeeded",
            *(f"{percentile(ours, p):.1f}" for p in (50, 95, 99)),
        ],
        [
            f"imgserve one-image job ({total})",
            "POST, then GET ?wait=30 until succeeded",
            *(f"{percentile(two_requests, p):.1f}" for p in (50, 95, 99)),
        ],
        [
            f"imgserve one-image job ({total})",
            "POST ?wait=30 as above, sent with requests instead",
            *(f"{1000 * percentile(through_requests, p):.1f}" for p in (50, 95, 99)),
        ],
        [
            f"imgserve's own steps, no queue ({floors})",
            "one after another in one process; the read over HTTP",
            f"{own:.1f}",
            "",
            "",
        ],
        [
            f"empty Celery task ({total})",
            "apply_async().get(), Redis result backend",
            *(f"{percentile(theirs, p):.1f}" for p in (50, 95, 99)),
        ],
    ]
    bench.lines += [
        "### Small-job latency (ms)",
        "",
        *markdown_table(["what", "how", "p50", "p95", "p99"], rows),
        "",
        f"- A POST-then-GET job's time, medians in ms (server times from the job resource): POST "
        f"answered {ms['post']:.1f}, of which validation before `created_at` {ms['validate']:.1f}; "
        f"`created_at` to `started_at` (store create, enqueue, broker, worker pick-up, "
        f"start_image) {ms['queued']:.1f}; `started_at` to `finished_at` (spec, decode, resize, "
        f"encode, write, finish_image) {ms['running']:.1f}; `finished_at` to the client holding "
        f"the answer (pub/sub wake-up, GET, JSON) {ms['noticed']:.1f}; GETs per job {gets:.0f}.",
        f"- A `POST ?wait=` job's time, medians in ms: `created_at` {one['validate']:.1f} after "
        f"the client sent it; `started_at` {one['queued']:.1f} later; `finished_at` "
        f"{one['running']:.1f} later; the client holds the answer {one['noticed']:.1f} after "
        f"that. For scale: a plain `GET /jobs/<id>` of a finished one-image job (HTTP both ways, "
        f"one store read, JSON) takes {ms['read']:.1f} ms.",
        f"- The floor: the steps every one-image job takes that an empty task does not, warm, "
        f"one after another in one process with no queue and no hand-off "
        f"(benchmarks/service_floor.py), medians in ms: validation {floor['validate']:.2f}, the "
        f"job record {floor['create']:.2f}, start {floor['start']:.2f}, the image with its "
        f"fsynced write {floor['image']:.2f}, finish {floor['finish']:.2f}, read "
        f"{floor['read']:.2f}; with the read over HTTP as above, {own:.1f} ms = "
        f"{own / empty:.2f}x the empty task's whole round trip. Within 2x, everything else (the "
        f"POST's own HTTP, the trip through the queue, two wake-ups) has {2 * empty - own:.1f} "
        f"ms, where the empty task takes {empty:.1f} ms for its trip alone.",
        f"- One client, one job at a time, 64x64 JPEG, `resize=0.5`, over one keep-alive "
        f"connection of Python's http.client (requests costs more on the client's side: the "
        f"row beside). `POST ?wait=` is how a "
        f"client submits a small job and waits for it, one request; POST then `GET ?wait=` is "
        f"how it follows a job it submitted earlier. The empty task's worker is "
        f"prefork with 2 processes, INFO logging and imgserve's reliability settings, on "
        f"database 1 of the same Redis. The kinds take turns in blocks of {block} after 10 "
        f"warm-ups each. Others used {busy:.2f} cores meanwhile.",
        "",
    ]


def own_work(bench: Bench, count: int) -> dict[str, float]:
    """Run benchmarks/service_floor.py on database 2 of the Redis; return its medians (ms)."""
    env = {**bench.procs.env(), "REDIS_URL": bench.procs.redis_url(2)}
    argv = [sys.executable, "-m", "benchmarks.service_floor", str(count)]
    done = subprocess.run(argv, env=env, cwd=bench.root, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"the floor measurement failed:\n{done.stderr}")
    floor: dict[str, float] = json.loads(done.stdout.splitlines()[-1])
    return floor


def peak_rss(bench: Bench, image: str, chain: list[str]) -> tuple[float, float]:
    """Run one image; return the RSS before and the peak RSS (MB) of the process that ran it."""
    pids = bench.procs.pool_pids()
    for pid in pids:
        reset_peak(pid)
    idle = {pid: status_kb(pid, "VmRSS") / 1e3 for pid in pids}
    run_job(bench.client, [{"input": image, "output": f"{bench.out('m')}.jpg"}], chain)
    peak = {pid: status_kb(pid, "VmHWM") / 1e3 for pid in pids}
    ran = max(pids, key=lambda pid: peak[pid] - idle[pid])
    return idle[ran], peak[ran]


def memory_phase(bench: Bench, seeds: list[str], big: str, size: tuple[int, int]) -> None:
    """Peak RSS of the pool process that runs a big JPEG; pool RSS after 100 and 1000 jobs."""
    decoded = size[0] * size[1] * 3 / 1e6
    rows = []
    for chain, limit in (["resize=0.1"], 0.25), (["blur=25"], 2.5):
        idle, peak = peak_rss(bench, big, chain)
        growth = peak - idle
        rows.append(
            [
                chain[0],
                f"{size[0]}x{size[1]}",
                f"{idle:.0f}",
                f"{peak:.0f}",
                f"{growth:.0f}",
                f"{growth / decoded:.2f}",
            ]
        )
        bench.figure(
            f"4. peak RSS growth, {size[0]}x{size[1]} JPEG, {chain[0]}",
            f"{growth:.0f} MB = {growth / decoded:.2f}x decoded",
            f"<= {limit}x decoded",
            growth <= limit * decoded,
        )
    first, total = (20, 100) if bench.args.quick else (100, 1000)
    bench.log(f"memory: big photo done; {total} jobs")
    rss, api = [], []
    for start, stop in (0, first), (first, total):
        jobs = [
            (
                [{"input": seeds[n % len(seeds)], "output": f"out/leak/{n}.jpg"}],
                LEAK_CHAINS[n % len(LEAK_CHAINS)],
            )
            for n in range(start, stop)
        ]
        run_jobs(bench.procs.url, jobs)
        rss.append(sum(status_kb(pid, "VmRSS") for pid in bench.procs.pool_pids()) / 1e3)
        api.append(status_kb(bench.procs.api.pid, "VmRSS") / 1e3 if bench.procs.api else 0.0)
    growth = rss[1] / rss[0] - 1
    bench.figure(
        f"4. pool RSS after {total} jobs vs after {first}",
        f"{rss[0]:.0f} -> {rss[1]:.0f} MB ({growth:+.1%})",
        "within 10%",
        abs(growth) <= 0.10,
    )
    chains = ", ".join(" + ".join(chain) for chain in LEAK_CHAINS)
    bench.lines += [
        "### Memory (MB)",
        "",
        *markdown_table(
            [
                "chain",
                "photo",
                "pool process RSS before",
                "peak (VmHWM)",
                "growth",
                "growth / decoded",
            ],
            rows,
        ),
        "",
        f"- Decoded size of the photo: {decoded:.0f} MB (3 bytes a pixel). The peak is VmHWM of "
        "the pool process that ran the job, reset just before (clear_refs 5).",
        f"- Leak check: one-image jobs of the seed photos, chains {chains} in turn, {CLIENTS} "
        f"clients. The pool processes' RSS (sum) after {first} jobs {rss[0]:.0f} MB, after "
        f"{total} {rss[1]:.0f} MB ({growth:+.1%}); the API's {api[0]:.0f} -> {api[1]:.0f} MB.",
        "",
    ]


def api_phase(bench: Bench, twelve: list[str]) -> None:
    """Rate and p95 of GET /jobs/<id> and POST /jobs from 8 clients while the workers are busy."""
    url, client = bench.procs.url, bench.client
    seconds, gets, posts = (3.0, 500, 100) if bench.args.quick else (10.0, 3000, 500)
    target = run_job(client, [{"input": TINY, "output": "out/api/target.jpg"}], ["resize=0.5"])
    out = bench.out("busy")
    busy = [{"input": twelve[n % len(twelve)], "output": f"{out}/{n}.jpg"} for n in range(400)]
    background = submit(client, busy, ["blur=25"])
    time.sleep(1.0)
    posted: list[str] = []

    def post(poster: Client, n: int) -> int:
        status, job = poster.request("POST", "/jobs", tiny_job(f"out/api/{n}.jpg"))
        if status == 202:
            posted.append(job["id"])
        return status

    def get(getter: Client, n: int) -> int:
        return getter.request("GET", f"/jobs/{target['id']}")[0]

    pool, others = bench.procs.pool_pids(), Others()
    cpu, started = cpu_seconds(pool), time.perf_counter()
    measured = [
        (
            "GET /jobs/<id>",
            50,
            hammer(url, get, gets, seconds),
        ),
        ("POST /jobs", 100, hammer(url, post, posts, seconds)),
    ]
    workers_cpu = (cpu_seconds(pool) - cpu) / (time.perf_counter() - started)
    busy_others = others.cores()
    still = client.request("GET", f"/jobs/{background['id']}")[1]
    client.request("DELETE", f"/jobs/{background['id']}")
    for job_id in [background["id"], *posted]:
        settle(client, {"id": job_id, "state": "queued", "finished_at": None})
    rows = []
    for name, budget, (rate, times, errors) in measured:
        p50, p95 = percentile(times, 50) * 1000, percentile(times, 95) * 1000
        rows.append(
            [
                name,
                f"1 image, {len(times)} requests",
                f"{rate:.0f}",
                f"{p50:.1f}",
                f"{p95:.1f}",
                str(errors),
            ]
        )
        bench.figure(
            f"5. {name} under load: p95 (rate)",
            f"{p95:.1f} ms ({rate:.0f}/s)",
            f"p95 <= {budget} ms (ours)",
            p95 <= budget and errors == 0,
        )
    bench.log("API under load: " + ", ".join(f"{r[0]} {r[2]}/s" for r in rows))
    bench.lines += [
        "### The API under load",
        "",
        *markdown_table(["request", "", "requests/s", "p50 ms", "p95 ms", "errors"], rows),
        "",
        f"- {CLIENTS} client threads (a keep-alive connection each), up to {seconds:g} s or {gets} "
        f"GETs / {posts} POSTs, while a 400-image job of 12 MP photos with blur=25 ran (then "
        f"cancelled; {still['progress']['percent']:.0f}% done by then): the pool processes "
        f"used {workers_cpu:.2f} cores meanwhile and other processes {busy_others:.2f}. The "
        "issue sets no number here; the p95 budgets are this benchmark's own.",
        "",
    ]


# -- set-up and report ------------------------------------------------------------------------


@dataclass(frozen=True)
class Photos:
    """The storage root's photos, relative to the root."""

    seeds: list[str]
    twelve: list[str]
    samples: list[str]
    big: str
    big_size: tuple[int, int]
    about: str
    """Where the seed photos came from, and how many are progressive JPEGs."""


def make_root(root: Path, quick: bool) -> Photos:
    """Fill the storage root: seed photos, samples, 12 MP photos, a big one and a 64x64 JPEG."""
    sample_files = sorted((REPO / "examples/images").glob("*.jpg"))
    seed_files = sorted(DEFAULT_SEED.parent.glob("cyclo[1-4].jpg")) or sample_files
    for folder, photos in ("seed", seed_files), ("samples", sample_files):
        (root / "photos" / folder).mkdir(parents=True)
        for photo in photos:
            shutil.copy(photo, root / "photos" / folder / photo.name)
    twelve = [ensure_photo(12, photo) for photo in seed_files]
    megapixels = 12 if quick else 50
    big = ensure_photo(megapixels, seed_files[0])
    for photo in {*twelve, big}:
        shutil.copy(photo, root / "photos" / photo.name)
    seed = cv2.imread(str(seed_files[0]))
    if seed is None:
        raise SystemExit(f"cannot read the seed photo {seed_files[0]}")
    tiny = cv2.resize(seed, (64, 64), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(root / TINY), tiny, [cv2.IMWRITE_JPEG_QUALITY, 90])
    progressive = sum(_progressive(photo) for photo in seed_files)
    origin = (
        f"{DEFAULT_SEED.parent}"
        if seed_files != sample_files
        else f"the samples in examples/images ({DEFAULT_SEED.parent} is missing)"
    )
    return Photos(
        about=f"- Seed photos: {len(seed_files)} from {origin}, {progressive} of them progressive "
        "JPEGs (slower to decode); samples: examples/images, baseline JPEGs",
        seeds=[f"photos/seed/{photo.name}" for photo in seed_files],
        twelve=[f"photos/{p.name}" for p in twelve],
        samples=[f"photos/samples/{photo.name}" for photo in sample_files],
        big=f"photos/{big.name}",
        big_size=photo_size(megapixels),
    )


def _progressive(photo: Path) -> bool:
    """Return whether a JPEG is progressive."""
    with Image.open(photo) as image:
        return bool(image.info.get("progressive"))


def fsync_ms(folder: Path, count: int = 50) -> tuple[float, float]:
    """Return the median and 90th percentile ms of writing and fsyncing a 100 kB file here."""
    data, times = os.urandom(100_000), []
    for n in range(count):
        path = folder / f".fsync-probe-{n}"
        started = time.perf_counter()
        with path.open("wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        times.append(1000 * (time.perf_counter() - started))
        path.unlink()
    return statistics.median(times), percentile(times, 90)


def git(*args: str) -> str:
    """Return the output of a git command in the repository."""
    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout.strip()


def machine(
    bench: Bench, load: str, seconds: float, disk: tuple[float, float], photos: Photos
) -> list[str]:
    """Describe the machine, the versions, the photos and the run."""
    server = redis.Redis.from_url(bench.procs.redis_url()).info("server")["redis_version"]
    dirty = git("status", "--porcelain", "--", "app", "worker", "pipeline")
    return [
        f"- Machine: {cpu_model()}, {os.cpu_count()} logical CPUs ({len(os.sched_getaffinity(0))} "
        f"usable), {psutil.virtual_memory().total / 2**30:.0f} GiB; load average {load} at the "
        f"start, {load_average()} at the end; whole run {seconds:.0f} s"
        + (" (--quick)" if bench.args.quick else ""),
        f"- Storage root on {bench.root.parent.parent}: writing and fsyncing 100 kB takes "
        f"{disk[0]:.2f} ms (median; p90 {disk[1]:.2f} ms), measured at the start",
        photos.about,
        f"- Python {platform.python_version()}, Celery {version('celery')}, kombu "
        f"{version('kombu')}, redis-py {version('redis')}, redis-server {server}, Flask "
        f"{version('flask')}, waitress {version('waitress')}, OpenCV {cv2.__version__} "
        f"({opencv_jpeg()}), numpy {version('numpy')}",
        f"- imgserve: commit {git('rev-parse', '--short', 'HEAD')}"
        + (" with uncommitted app/worker/pipeline changes" if dirty else "")
        + "; API with waitress's 32 threads, one worker `--concurrency 2` (and 1 for scaling), "
        "Redis without persistence, everything on loopback",
    ]


def arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.service",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="smoke run, under a minute")
    parser.add_argument("--repeat", type=int, help="throughput repetitions (default 3; 1 quick)")
    parser.add_argument(
        "--jobs", type=int, default=1, help="jobs each throughput batch is split into (default 1)"
    )
    parser.add_argument(
        "--quiet",
        type=float,
        help="seconds to wait before each throughput batch for other processes "
        "to use under 0.3 cores (default 3; 0 quick)",
    )
    parser.add_argument(
        "--phases",
        default="latency,memory,api,throughput",
        help="which to run (default latency,memory,api,throughput)",
    )
    parser.add_argument(
        "--work", type=Path, help="folder for the storage root and logs (default: the temp dir)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work folder and logs")
    args = parser.parse_args(argv)
    args.repeat = args.repeat or (1 if args.quick else 3)
    args.quiet = (0.0 if args.quick else 3.0) if args.quiet is None else args.quiet
    args.phases = {phase.strip() for phase in args.phases.split(",")}
    if args.repeat < 1 or args.jobs < 1:
        parser.error("--repeat and --jobs take positive numbers")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the service benchmark and print its Markdown report."""
    args = arguments(argv)
    load, started = load_average(), time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="imgserve-bench-service-", dir=args.work))
    root = work / "root"
    photos = make_root(root, args.quick)
    disk = fsync_ms(root)
    bench = Bench(args, root, Processes(work, root))
    try:
        bench.procs.start_redis()
        bench.procs.start_api()
        bench.start_workers(2)
        if "latency" in args.phases:
            bench.procs.start_echo()
            latency_phase(bench)
        if "memory" in args.phases:
            memory_phase(bench, photos.seeds, photos.big, photos.big_size)
        if "api" in args.phases:
            api_phase(bench, photos.twelve)
        if "throughput" in args.phases:
            loads = workloads(bench.args.quick, photos.seeds, photos.twelve, photos.samples)
            throughput_report(bench, throughput_phase(bench, loads), loads)
        summary = [
            [f.name, f.measured, f.target, "MET" if f.met else "NOT MET"]
            for f in sorted(bench.figures, key=lambda f: f.name[0])
        ]
        print(
            "\n".join(
                [
                    "## Service benchmark",
                    "",
                    *machine(bench, load, time.perf_counter() - started, disk, photos),
                    "",
                    *markdown_table(["figure", "measured", "target", "verdict"], summary),
                    "",
                    *bench.lines,
                ]
            )
        )
    finally:
        for pool in bench.pools.values():
            pool.shutdown(cancel_futures=True)
        bench.procs.stop()
        if args.keep:
            print(f"work folder kept: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
