"""The serving commands of ``imgserve``: the API (waitress), a Celery worker, or both (``up``).

Each sets up logging first (app/logging_setup.py). The API's socket is bound before
anything is printed or started, so a port in use is one sentence and exit 2, not a
traceback after a banner.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import signal
import subprocess
import sys
from typing import TYPE_CHECKING, Any

from app.cli_errors import EXIT_OK, EXIT_USAGE, UsageError
from app.cli_text import banner, url_of
from app.logging_setup import configure_logging, log_format

if TYPE_CHECKING:
    from flask import Flask
    from waitress.server import BaseWSGIServer, MultiSocketServer

    from worker.settings import Settings

log = logging.getLogger(__name__)

BODY_READ_LIMIT = 64 * 1024 * 1024
"""Bytes of a body waitress reads at most (at least twice IMGSERVE_MAX_BODY_BYTES)."""


def run_api(args: argparse.Namespace) -> int:
    """Serve the API with waitress until interrupted."""
    configure_logging()
    settings = read_settings()
    refuse_binding(args, settings)
    server = listen(make_app(settings, args.threads), settings, args)
    log.info("serving the API on %s with %d threads", url_of(args.host, args.port), args.threads)
    server.run()
    return EXIT_OK


def run_up(args: argparse.Namespace) -> int:
    """Run a worker process and serve the API here, on the embedded default or REDIS_URL."""
    from worker.parent_death import child_options

    configure_logging()
    settings = read_settings()
    refuse_binding(args, settings)
    server = listen(make_app(settings, args.threads), settings, args)
    concurrency = args.concurrency or settings.concurrency
    command = [sys.executable, "-m", "app.cli", "worker", f"--concurrency={concurrency}"]
    command.append(f"--parent={os.getpid()}")
    lock = take_state_folder(settings) if settings.embedded else None
    if settings.embedded and lock is None:
        return EXIT_USAGE
    if lock is not None:  # the worker inherits it: no new service starts while it runs
        command.append(f"--state-lock-fd={lock}")
    worker = subprocess.Popen(command, pass_fds=() if lock is None else (lock,), **child_options())
    print(banner(settings, url_of(args.host, args.port), concurrency), flush=True)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        server.run()  # returns on KeyboardInterrupt (Ctrl-C, or SIGTERM as one)
        return EXIT_OK
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()


def _interrupt(*_: object) -> None:
    """Stop serving as Ctrl-C does (SIGTERM: Docker's, systemd's and the tests' stop)."""
    raise KeyboardInterrupt


def read_settings() -> Settings:
    """Return the service's settings from the environment; UsageError names a bad one."""
    from worker.settings import Settings, SettingsError

    try:
        return Settings.from_env()
    except SettingsError as exc:
        raise UsageError(str(exc)) from None


def refuse_binding(args: argparse.Namespace, settings: Settings) -> None:
    """Raise UsageError when the API must not listen on --host (beyond loopback, no keys)."""
    from app.auth import binding_refusal

    refusal = binding_refusal(args.host, settings, allow_anonymous=args.allow_anonymous)
    if refusal is not None:
        raise UsageError(refusal)


def make_app(settings: Settings, threads: int) -> Flask:
    """Return the API app for a server with threads request threads."""
    from app import create_app
    from app.jobs import wait_slots

    return create_app({"SETTINGS": settings, "MAX_WAITS": wait_slots(threads)})


def listen(
    app: Flask, settings: Settings, args: argparse.Namespace
) -> BaseWSGIServer | MultiSocketServer:
    """Bind the API's socket; a port in use, or an address not to be had, is a UsageError."""
    from waitress.server import create_server

    options = waitress_options(settings, args.threads)
    try:
        server: BaseWSGIServer | MultiSocketServer = create_server(
            app, host=args.host, port=args.port, **options
        )
        return server
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise UsageError(
                f"port {args.port} is already in use on {args.host} (another imgserve, or "
                "another program); choose another with --port or IMGSERVE_PORT"
            ) from None
        raise UsageError(
            f"cannot listen on {args.host} port {args.port}: {exc.strerror or exc}"
        ) from None


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
    concurrency: int,
    loglevel: str,
    *,
    embedded: bool,
    task_events: bool = False,
    quiet: bool = False,
) -> list[str]:
    """Return the Celery worker arguments imgserve runs with.

    quiet: without Celery's start-up banner, which is no log line (for IMGSERVE_LOG_FORMAT=json).
    """
    argv = ["--quiet"] if quiet else []
    argv += [
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
    """Run a Celery worker until interrupted, logging as the API does."""
    configure_logging(args.loglevel)
    read_settings()  # a bad setting is a sentence here, not a traceback from the import below
    from celery.signals import setup_logging

    from worker.celery_app import app, settings, wait_out_full_disk
    from worker.parent_death import die_with_parent
    from worker.state_folder import holds_lock

    # With a receiver connected, Celery leaves logging as configure_logging set it.
    setup_logging.connect(_keep_logging, weak=False)
    parent, lock_fd = getattr(args, "parent", None), getattr(args, "state_lock_fd", None)
    if parent is not None:
        die_with_parent(parent)
    if settings.embedded:
        if lock_fd is None:
            if take_state_folder(settings) is None:
                return EXIT_USAGE
        elif not holds_lock(lock_fd, settings.state_dir):
            raise UsageError(f"fd {lock_fd} is not the state folder's lock")
        wait_out_full_disk(app)
    concurrency = args.concurrency or settings.concurrency
    argv = worker_argv(
        concurrency,
        args.loglevel,
        embedded=settings.embedded,
        task_events=settings.task_events,
        quiet=log_format() == "json",
    )
    app.worker_main(argv)
    return EXIT_OK


def _keep_logging(**_: object) -> None:
    """Keep the logging configure_logging set up (Celery's setup_logging signal)."""


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
