"""What ``imgserve`` prints: job summaries, listings, state colours, the ``up`` banner.

Colour is for people: only on a terminal, never with NO_COLOR set (https://no-color.org)
or TERM=dumb, so a pipe or a file always gets plain text.
"""

from __future__ import annotations

import json
import os
import posixpath
import shutil
import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import urlsplit

from app.client import DEFAULT_URL

if TYPE_CHECKING:
    from worker.settings import Settings

FAILURES_SHOWN = 10
"""Failed images a summary lists at most; --verbose lists every one."""
FOLDERS_SHOWN = 3
SAMPLE_JOB = Path("examples/job.json")
COLOURS = {"succeeded": "32", "failed": "31", "partially_failed": "33", "cancelled": "90"}
"""ANSI colours of the final states: green, red, yellow, grey."""


def use_colour(stream: TextIO) -> bool:
    """Return whether text for stream may be coloured: a terminal, and nobody said no."""
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    return stream.isatty()


def paint(state: str, text: str, *, colour: bool) -> str:
    """Return text in the colour of a job state (as it is without colour)."""
    code = COLOURS.get(state)
    return f"\033[{code}m{text}\033[0m" if colour and code else text


def as_json(document: Any) -> str:
    """Return a resource as the --json options print it."""
    return json.dumps(document, indent=2)


def state_line(job: dict[str, Any], *, colour: bool = False) -> str:
    """Return e.g. "partially_failed: 3 of 4 images done, 1 failed" (more counts when not 0)."""
    progress = job["progress"]
    counts = [f"{progress['done']} of {progress['total']} images done"]
    counts.append(f"{progress['failed']} failed")
    states = Counter(image["state"] for image in job.get("images", []))
    states["cancelled"] = progress["cancelled"]
    counts += [f"{states[state]} {state}" for state in ("cancelled", "running", "queued")
               if states[state]]  # fmt: skip
    return f"{paint(job['state'], job['state'], colour=colour)}: {', '.join(counts)}"


def summary(job: dict[str, Any], *, verbose: bool = False, colour: bool = False) -> list[str]:
    """Return a job's state line, its failed images with their errors, and where it wrote.

    verbose: every image instead: its outputs, or its state and error.
    """
    lines = [state_line(job, colour=colour)]
    failed = [image for image in job["images"] if image["error"]]
    if verbose:
        for image in job["images"]:
            if image["error"] or not image["outputs"]:
                lines.append(image_line(image))
            lines += [f"  {output}" for output in image["outputs"]]
        return lines
    lines += [image_line(image) for image in failed[:FAILURES_SHOWN]]
    if len(failed) > FAILURES_SHOWN:
        more = len(failed) - FAILURES_SHOWN
        lines.append(f"  and {more} more failed images (--verbose lists every image)")
    lines.append(wrote_line([output for image in job["images"] for output in image["outputs"]]))
    return lines


def image_line(image: dict[str, Any]) -> str:
    """Return an image's input and state, and its error if it has one."""
    error = f": {image['error']}" if image["error"] else ""
    return f"  {image['input']}: {image['state']}{error}"


def wrote_line(outputs: list[str]) -> str:
    """Return how many outputs were written, and to which folders."""
    if not outputs:
        return "wrote no outputs"
    noun = "output" if len(outputs) == 1 else "outputs"
    folders = Counter((posixpath.dirname(output) or ".") + "/" for output in outputs)
    if len(folders) == 1:
        return f"wrote {len(outputs)} {noun} to {next(iter(folders))}"
    shown = [f"{count} to {folder}" for folder, count in list(folders.items())[:FOLDERS_SHOWN]]
    if len(folders) > FOLDERS_SHOWN:
        shown.append(f"{sum(list(folders.values())[FOLDERS_SHOWN:])} to "
                     f"{len(folders) - FOLDERS_SHOWN} more folders")  # fmt: skip
    return f"wrote {len(outputs)} {noun}: {', '.join(shown)}"


def listing(jobs: list[dict[str, Any]], *, colour: bool = False) -> list[str]:
    """Return a table of jobs: id, state, progress and when each was created."""
    rows = [("ID", "STATE", "PROGRESS", "CREATED")]
    rows += [
        (job["id"], job["state"], progress_text(job["progress"]), _second(job["created_at"]))
        for job in jobs
    ]
    widths = [max(len(row[n]) for row in rows) for n in range(3)]
    lines = []
    for number, (job_id, state, progress, created) in enumerate(rows):
        cells = [job_id.ljust(widths[0]), state.ljust(widths[1]), progress.ljust(widths[2])]
        if number:  # the word, not its padding: colour codes take no columns
            cells[1] = paint(state, state, colour=colour) + cells[1][len(state) :]
        lines.append("  ".join([*cells, created]))
    return lines


def progress_text(progress: dict[str, Any]) -> str:
    """Return e.g. "3/4, 1 failed": the images done of all, then any failed or cancelled."""
    text = f"{progress['done']}/{progress['total']}"
    for key in ("failed", "cancelled"):
        if progress[key]:
            text += f", {progress[key]} {key}"
    return text


def _second(timestamp: str) -> str:
    """Return an ISO 8601 UTC time to the second: "2026-12-02T17:23:47Z"."""
    return timestamp.partition(".")[0].removesuffix("Z") + "Z"


def command_name() -> str:
    """Return how this shell runs imgserve: "imgserve" when it is on PATH, else its path."""
    run_as = sys.argv[0]
    if Path(run_as).name != "imgserve":  # python -m app.cli
        return "imgserve"
    found = shutil.which("imgserve")
    if found and Path(found).resolve() == Path(run_as).resolve():
        return "imgserve"
    return run_as


def url_of(host: str, port: int) -> str:
    """Return the URL a client on this machine reaches the API by."""
    if host in ("", "0.0.0.0", "::"):
        host = "localhost"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def banner(settings: Settings, url: str, concurrency: int) -> str:
    """Return what `imgserve up` prints once it serves: where, and a job to try."""
    redis = without_password(settings.redis_url or "")
    mode = "embedded (no server)" if settings.embedded else f"Redis at {redis}"
    client = "" if os.environ.get("IMGSERVE_URL", DEFAULT_URL) == url else f"IMGSERVE_URL={url} "
    here = Path.cwd().resolve()
    if (here / SAMPLE_JOB).is_file() and settings.inputs.resolve() == here:
        sample = f"  sample job:  {client}{command_name()} submit {SAMPLE_JOB} --wait\n"
    else:
        sample = f"  submit:      {client}{command_name()} submit JOB.json --wait\n"
    return (
        f"imgserve is up on {mode}, {concurrency} worker processes\n"
        f"  API:         {url}/jobs\n"
        f"  docs:        {url}/docs\n"
        f"  storage:     {settings.root}\n"
        f"{sample}"
        "Stop with Ctrl-C."
    )


def without_password(url: str) -> str:
    """Return a URL with its password, if it has one, replaced by ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{user}:***@{host}").geturl()
