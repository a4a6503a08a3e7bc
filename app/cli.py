"""The ``imgserve`` command: serve the API, run workers, or both; submit, follow, list and
cancel jobs.

Exit codes: 0 done; 1 a job waited for did not succeed; 2 a usage or request error; 3 the
service cannot be reached (or answers 503); 130 stopped by Ctrl-C. Every error is one
sentence on stderr (a refused job adds a line per problem), never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import NoReturn

from app.cli_errors import EXIT_INTERRUPTED, EXIT_USAGE, CommandError
from app.cli_jobs import DEFAULT_LIMIT, run_cancel, run_jobs, run_status, run_submit
from app.cli_serve import run_api, run_up, run_worker, waitress_options, worker_argv
from app.logging_setup import LogSettingError

__all__ = ["main", "waitress_options", "worker_argv"]

DEFAULT_PORT = 8888
CONCURRENCY_HELP = "worker processes (default: IMGSERVE_CONCURRENCY, else the usable CPUs)"
URL_HELP = "the API (default: IMGSERVE_URL, else http://localhost:8888)"


class Parser(argparse.ArgumentParser):
    """argparse with its errors in one line, pointing at --help, and exit code 2."""

    def error(self, message: str) -> NoReturn:
        """Print the usage error as one sentence and exit 2."""
        self.exit(EXIT_USAGE, f"imgserve: {message}; see `{self.prog} --help`\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the imgserve command line; return its exit code."""
    args = parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except CommandError as exc:
        print(exc.message(), file=sys.stderr)
        return exc.exit_code
    except LogSettingError as exc:
        print(f"imgserve: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("imgserve: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. `imgserve jobs | head -1`: the reader had enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return code


def parser() -> Parser:
    """Return the parser of every imgserve command."""
    top = Parser(prog="imgserve", description=__doc__.split("\n\n")[0])
    top.add_argument("--version", action="version", version=f"imgserve {package_version()}")
    commands = top.add_subparsers(dest="command", required=True)

    api = commands.add_parser("api", help="serve the HTTP API (waitress)")
    _serving_options(api)
    api.set_defaults(run=run_api)

    worker = commands.add_parser("worker", help="run a Celery worker (prefork)")
    worker.add_argument("--concurrency", type=int, default=None, help=CONCURRENCY_HELP)
    worker.add_argument("--loglevel", default="INFO")
    # Given by `imgserve up` to its worker: die with it; its state folder lock is inherited.
    for hidden in ("--parent", "--state-lock-fd"):
        worker.add_argument(hidden, type=int, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    worker.set_defaults(run=run_worker)

    up = commands.add_parser("up", help="run the API and a worker together")
    _serving_options(up)
    up.add_argument("--concurrency", type=int, default=None, help=CONCURRENCY_HELP)
    up.set_defaults(run=run_up)

    submit = commands.add_parser("submit", help="submit a job file")
    submit.add_argument("job", type=Path, help="a JSON file with images and operations")
    _waiting_options(submit, "follow the job until it ends; exit 1 unless it succeeded")
    submit.add_argument("-q", "--quiet", action="store_true", help="print only the job's id")
    submit.set_defaults(run=run_submit)

    status = commands.add_parser("status", help="show a job")
    status.add_argument("job_id")
    _waiting_options(status, "follow the job until it ends; exit 1 unless it succeeded")
    status.set_defaults(run=run_status)

    jobs = commands.add_parser("jobs", help="list recent jobs, newest first")
    jobs.add_argument("--limit", type=int, default=DEFAULT_LIMIT, help="jobs a page (1 to 100)")
    jobs.add_argument("--offset", type=int, default=0, help="jobs to skip")
    _client_options(jobs)
    jobs.set_defaults(run=run_jobs)

    cancel = commands.add_parser("cancel", help="cancel a job's images that have not started")
    cancel.add_argument("job_id")
    _client_options(cancel)
    cancel.set_defaults(run=run_cancel)
    return top


def _serving_options(command: argparse.ArgumentParser) -> None:
    """Add the options of a command that serves HTTP."""
    command.add_argument("--host", default="127.0.0.1", help="beyond loopback: API keys needed")
    command.add_argument(
        "--allow-anonymous", action="store_true", help="serve beyond loopback without API keys"
    )
    command.add_argument(
        "--port",
        type=port_number,
        default=os.environ.get("IMGSERVE_PORT") or str(DEFAULT_PORT),
        help=f"the API's port (default: IMGSERVE_PORT, else {DEFAULT_PORT})",
    )
    command.add_argument(
        "--threads", type=int, default=32, help="API threads (long-polls hold one)"
    )


def _client_options(command: argparse.ArgumentParser) -> None:
    """Add the options of a command that talks to the API."""
    command.add_argument("--json", action="store_true", help="print the resource as JSON")
    command.add_argument("--url", default=None, help=URL_HELP)


def _waiting_options(command: argparse.ArgumentParser, wait_help: str) -> None:
    """Add the options of a command that shows one job and may follow it."""
    command.add_argument("--wait", action="store_true", help=wait_help)
    command.add_argument(
        "-v", "--verbose", action="store_true", help="list every image's outputs or error"
    )
    _client_options(command)


def port_number(text: str) -> int:
    """Return a TCP port number (for --port and IMGSERVE_PORT)."""
    if not text.strip().isdigit() or not 0 < int(text) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (1 to 65535)")
    return int(text)


def package_version() -> str:
    """Return the installed imgserve's version."""
    try:
        return version("imgserve")
    except PackageNotFoundError:
        return "(not installed: run `make install`)"


if __name__ == "__main__":
    sys.exit(main())
