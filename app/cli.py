"""The ``imgserve`` command: serve the API, run workers, or both; submit and watch jobs."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app import client

if TYPE_CHECKING:
    from worker.settings import Settings

DEFAULT_PORT = 8888
CONCURRENCY_HELP = "worker processes (default: IMGSERVE_CONCURRENCY, else the usable CPUs)"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the imgserve command line."""
    parser = argparse.ArgumentParser(prog="imgserve", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    api = commands.add_parser("api", help="serve the HTTP API (waitress)")
    _serving_options(api)
    api.set_defaults(run=run_api)

    worker = commands.add_parser("worker", help="run a Celery worker (prefork)")
    worker.add_argument("--concurrency", type=int, default=None, help=CONCURRENCY_HELP)
    worker.add_argument("--loglevel", default="INFO")
    # Given by `imgserve up` to its worker: die with it; its state folder lock is inherited.
    worker.add_argument("--parent", type=int, default=None, help=argparse.SUPPRESS)
    worker.add_argument("--state-lock-fd", type=int, default=None, help=argparse.SUPPRESS)
    worker.set_defaults(run=run_worker)

    up = commands.add_parser("up", help="run the API and a worker together")
    _serving_options(up)
    up.add_argument("--concurrency", type=int, default=None, help=CONCURRENCY_HELP)
    up.set_defaults(run=run_up)

    submit = commands.add_parser("submit", help="submit a job file")
    submit.add_argument("job", type=Path, help="a JSON file with images and operations")
    submit.add_argument("--wait", action="store_true", help="show progress until the job ends")
    submit.add_argument("--url", default=None, help="the API (default: IMGSERVE_URL)")
    submit.set_defaults(run=run_submit)

    status = commands.add_parser("status", help="show a job")
    status.add_argument("job_id")
    status.add_argument("--url", default=None, help="the API (default: IMGSERVE_URL)")
    status.set_defaults(run=run_status)

    args = parser.parse_args(argv)
    result: int = args.run(args)
    return result


def _serving_options(parser: argparse.ArgumentParser) -> None:
    """Add the options of a command that serves HTTP."""
    parser.add_argument("--host", default="127.0.0.1", help="beyond loopback: API keys needed")
    parser.add_argument(
        "--allow-anonymous", action="store_true", help="serve beyond loopback without API keys"
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--threads", type=int, default=32, help="API threads (long-polls hold one)")


def run_api(args: argparse.Namespace) -> int:
    """Serve the API with waitress until interrupted."""
    import waitress

    from app import create_app
    from app.jobs import wait_slots
    from worker.settings import Settings

    settings = Settings.from_env()
    if refused_binding(args, settings):
        return 2
    app = create_app({"SETTINGS": settings, "MAX_WAITS": wait_slots(args.threads)})
    waitress.serve(app, host=args.host, port=args.port, **waitress_options(settings, args.threads))
    return 0


def refused_binding(args: argparse.Namespace, settings: Settings) -> bool:
    """Say why the API must not listen on --host, if it must not; return whether it said."""
    from app.auth import binding_refusal

    refusal = binding_refusal(args.host, settings, allow_anonymous=args.allow_anonymous)
    if refusal is not None:
        print(f"imgserve: {refusal}", file=sys.stderr)
    return refusal is not None


BODY_READ_LIMIT = 64 * 1024 * 1024
"""Bytes of a body waitress reads at most (at least twice IMGSERVE_MAX_BODY_BYTES)."""


def waitress_options(settings: Settings, threads: int) -> dict[str, Any]:
    """Return waitress's options for the API: its threads and how much of a body it reads."""
    return {
        # waitress reads a whole body (to a temporary file past 512 KiB) before the app sees
        # it, and refuses one over its own limit with a text/plain 413 and a closed
        # connection, which a client still sending sees as a reset. So it reads well past
        # IMGSERVE_MAX_BODY_BYTES, for Flask to answer problem+json naming that setting.
        "max_request_body_size": max(BODY_READ_LIMIT, 2 * settings.max_body_bytes),
        "threads": threads,
        "ident": "imgserve",
        "clear_untrusted_proxy_headers": True,
    }


def worker_argv(
    concurrency: int, loglevel: str, *, embedded: bool, task_events: bool = False
) -> list[str]:
    """Return the Celery worker arguments imgserve runs with."""
    argv = [
        "worker",
        "--pool=prefork",
        f"--concurrency={concurrency}",
        f"--loglevel={loglevel}",
        f"--hostname=imgserve-{os.getpid()}@%h",
    ]
    if task_events:
        argv.append("--task-events")
    if embedded:  # the filesystem transport has no broadcast worth the wait
        argv += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
    return argv


def run_worker(args: argparse.Namespace) -> int:
    """Run a Celery worker until interrupted."""
    from worker.celery_app import app, settings, wait_out_full_disk
    from worker.parent_death import die_with_parent
    from worker.state_folder import holds_lock

    if args.parent is not None:
        die_with_parent(args.parent)
    if settings.embedded:
        if args.state_lock_fd is None:
            taken = take_state_folder(settings)
            if taken is None:
                return 2
        elif not holds_lock(args.state_lock_fd, settings.state_dir):
            raise SystemExit(f"imgserve: fd {args.state_lock_fd} is not the state folder's lock")
        wait_out_full_disk(app)
    concurrency = args.concurrency or settings.concurrency
    argv = worker_argv(
        concurrency, args.loglevel, embedded=settings.embedded, task_events=settings.task_events
    )
    app.worker_main(argv)
    return 0


def take_state_folder(settings: Settings) -> int | None:
    """Take the embedded state folder and redeliver what a dead service left in it.

    Return the lock's file descriptor, or None (having said why) when another service
    runs the folder.
    """
    from worker.embedded import take_over
    from worker.state_folder import StateFolderBusy

    try:
        lock, redelivered = take_over(settings)
    except StateFolderBusy as exc:
        print(f"imgserve: {exc}", file=sys.stderr)
        return None
    if redelivered.images:
        jobs = "job" if redelivered.jobs == 1 else "jobs"
        print(f"imgserve: redelivered {redelivered.images} unfinished images of "
              f"{redelivered.jobs} {jobs} left by an earlier run", flush=True)  # fmt: skip
    return lock


def run_up(args: argparse.Namespace) -> int:
    """Run a worker process and serve the API here, on the embedded default or REDIS_URL."""
    from worker.parent_death import child_options
    from worker.settings import Settings

    settings = Settings.from_env()
    if refused_binding(args, settings):
        return 2
    concurrency = args.concurrency or settings.concurrency
    command = [sys.executable, "-m", "app.cli", "worker", f"--concurrency={concurrency}"]
    command.append(f"--parent={os.getpid()}")
    lock = take_state_folder(settings) if settings.embedded else None
    if settings.embedded and lock is None:
        return 2
    if lock is not None:  # the worker inherits it: no new service starts while it runs
        command.append(f"--state-lock-fd={lock}")
    worker = subprocess.Popen(command, pass_fds=() if lock is None else (lock,), **child_options())
    where = f"http://localhost:{args.port}"
    mode = "embedded (no server)" if settings.embedded else f"Redis at {settings.redis_url}"
    print(
        f"imgserve is up on {mode}, {concurrency} worker processes\n"
        f"  API:         {where}/jobs\n"
        f"  docs:        {where}/docs\n"
        f"  storage:     {settings.root}\n"
        f"  sample job:  imgserve submit examples/job.json --wait\n"
        "Stop with Ctrl-C.",
        flush=True,
    )
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
    try:
        return run_api(args)
    except KeyboardInterrupt:
        return 0
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()


def run_submit(args: argparse.Namespace) -> int:
    """Submit a job file; with --wait, show its progress and exit 0 only if it succeeded."""
    try:
        payload = json.loads(args.job.read_text())
    except (OSError, ValueError) as exc:
        print(f"imgserve: cannot read {args.job}: {exc}", file=sys.stderr)
        return 2
    api = client.Client(args.url)
    try:
        job = api.submit(payload)
        print(f"job {job['id']} {job['state']}: {api.job_url(job['id'])}")
        if args.wait:
            job = api.follow(job)
            print_outcome(job)
            return 0 if job["state"] == "succeeded" else 1
    except client.ApiError as exc:
        print(f"imgserve: {exc}", file=sys.stderr)
        return 2
    return 0


def run_status(args: argparse.Namespace) -> int:
    """Print a job's state and outputs."""
    try:
        job = client.Client(args.url).get(args.job_id)
    except client.ApiError as exc:
        print(f"imgserve: {exc}", file=sys.stderr)
        return 2
    print_outcome(job)
    return 0


def print_outcome(job: dict[str, Any]) -> None:
    """Print a job's state, then each image's outputs or error."""
    progress = job["progress"]
    print(f"{job['state']}: {progress['done']} of {progress['total']} images done, "
          f"{progress['failed']} failed")  # fmt: skip
    for image in job["images"]:
        if image["error"]:
            print(f"  {image['input']}: {image['state']}: {image['error']}")
        else:
            for output in image["outputs"]:
                print(f"  {output}")


if __name__ == "__main__":
    sys.exit(main())
