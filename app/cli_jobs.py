"""The job commands of ``imgserve``: submit, status, jobs and cancel, over the HTTP API."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm

from app.cli_errors import EXIT_NOT_SUCCEEDED, EXIT_OK, Interrupted, RequestRefused, UsageError
from app.cli_text import as_json, command_name, listing, state_line, summary, use_colour
from app.client import Client

DEFAULT_LIMIT = 20
"""Jobs a page of `imgserve jobs` lists unless --limit says otherwise."""


def run_submit(args: argparse.Namespace) -> int:
    """Submit a job file; with --wait, follow it and exit 0 only if it succeeded."""
    if args.json and args.quiet:
        raise UsageError("--json and --quiet ask for two different outputs; give one")
    body = read_job_file(args.job)
    api = Client(args.url)
    try:
        job = api.submit(body)
    except RequestRefused as exc:
        if exc.status != 413:
            raise
        raise UsageError(
            f"{args.job} is too large to submit ({len(body)} bytes): {exc.detail}"
        ) from None
    if args.quiet:
        print(job["id"], flush=True)
    elif not args.json:
        print(f"job {job['id']} {job['state']}: {api.job_url(job['id'])}", flush=True)
    if not args.wait:
        if args.json:
            print(as_json(job))
        return EXIT_OK
    return finish(args, wait(api, job, quiet=args.quiet or args.json))


def run_status(args: argparse.Namespace) -> int:
    """Print a job; with --wait, follow it and exit 0 only if it succeeded."""
    api = Client(args.url)
    job = api.get(args.job_id)
    if not args.wait:
        return finish(args, job, exit_by_state=False)
    return finish(args, wait(api, job, quiet=args.json))


def run_jobs(args: argparse.Namespace) -> int:
    """Print a page of recent jobs, newest first, and how to ask for the next."""
    page = Client(args.url).list_jobs(limit=args.limit, offset=args.offset)
    if args.json:
        print(as_json(page))
        return EXIT_OK
    if not page["jobs"]:
        at = f" at offset {args.offset}" if args.offset else ""
        print(f"no jobs{at}", file=sys.stderr)
        return EXIT_OK
    for line in listing(page["jobs"], colour=use_colour(sys.stdout)):
        print(line)
    if page["next"]:
        limit = f" --limit {args.limit}" if args.limit != DEFAULT_LIMIT else ""
        following = f"{command_name()} jobs --offset {args.offset + args.limit}{limit}"
        print(f"more: {following}", file=sys.stderr)
    return EXIT_OK


def run_cancel(args: argparse.Namespace) -> int:
    """Cancel a job's images that have not started; print the job as it is then."""
    job = Client(args.url).cancel(args.job_id)
    if args.json:
        print(as_json(job))
    else:
        print(f"job {job['id']} {state_line(job, colour=use_colour(sys.stdout))}")
    return EXIT_OK


def read_job_file(path: Path) -> bytes:
    """Return a job file's bytes once they are known to be JSON (UsageError says why not)."""
    try:
        body = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        json.loads(body)
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not UTF-8 text, so not a JSON job file") from None
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{path} is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    return body


def wait(api: Client, job: dict[str, Any], *, quiet: bool) -> dict[str, Any]:
    """Follow a job until it ends, with a progress bar on a terminal; return its last version.

    Ctrl-C stops the waiting, not the job: Interrupted says how to follow or cancel it.
    """
    shown = not quiet and sys.stderr.isatty()
    total = job["progress"]["total"]
    try:
        with tqdm(total=total, unit="image", desc=job["id"][:8], disable=not shown) as bar:

            def show(current: dict[str, Any]) -> None:
                progress = current["progress"]
                bar.update(sum(progress[k] for k in ("done", "failed", "cancelled")) - bar.n)
                bar.set_postfix_str(current["state"])

            return api.follow(job, show)
    except KeyboardInterrupt:
        name, job_id = command_name(), job["id"]
        raise Interrupted(
            f"stopped waiting; job {job_id} goes on: `{name} status {job_id} --wait` follows "
            f"it again, `{name} cancel {job_id}` cancels it"
        ) from None


def finish(args: argparse.Namespace, job: dict[str, Any], *, exit_by_state: bool = True) -> int:
    """Print a job as the options ask; return 0, or 1 for a job that did not succeed."""
    if args.json:
        print(as_json(job))
    elif not getattr(args, "quiet", False):
        colour = use_colour(sys.stdout)
        for line in summary(job, verbose=args.verbose, colour=colour):
            print(line)
    if exit_by_state and job["state"] != "succeeded":
        return EXIT_NOT_SUCCEEDED
    return EXIT_OK
