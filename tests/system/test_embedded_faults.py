"""The embedded `imgserve up` killed, or its state folder full: nothing lost, nothing orphaned."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.system.aftermath import assert_all_succeeded_once, settle, timed
from tests.system.conftest import StartService, up_args
from tests.system.service import Service

pytestmark = pytest.mark.slow

SMALL_CHAIN = ["resize=0.5", "blur=31"]  # a few tens of ms an image: cheap ones go in batches
SMALL_SIZE = (256, 256)
RESTARTED_WITHIN = 30.0


def small_images(count: int) -> list[dict[str, str]]:
    """Return a job's images of the 512x512 photo, each to its own output."""
    return [{"input": "photos/cyclo4.jpg", "output": f"out/{n:03d}.png"} for n in range(count)]


def tree(process: subprocess.Popen[bytes]) -> list[psutil.Process]:
    """Return a process and every live process below it."""
    top = psutil.Process(process.pid)
    return [top, *top.children(recursive=True)]


def describe(processes: list[psutil.Process]) -> list[str]:
    """Return the command lines of processes still alive, for failure messages."""
    lines = []
    for process in processes:
        with contextlib.suppress(psutil.Error):
            lines.append(f"{process.pid} {' '.join(process.cmdline())}")
    return lines


def test_the_whole_up_tree_killed_at_a_quarter_the_restarted_one_finishes_the_job(
    tmp_path: Path, embedded_ups: StartService
) -> None:
    service = embedded_ups(tmp_path / "state")
    up = service.processes[0]
    job_id = service.submit(small_images(200), SMALL_CHAIN)["id"]
    at_kill = service.wait_until(job_id, lambda j: j["progress"]["done"] >= 50)
    everyone = tree(up)
    os.killpg(up.pid, signal.SIGKILL)  # the API, the worker and its pool at once
    _, alive = psutil.wait_procs(everyone, timeout=10)
    assert alive == [], describe(alive)
    up.wait()
    service.processes.remove(up)
    assert at_kill["state"] == "running", at_kill["progress"]
    restarted = time.monotonic()
    again = service.spawn(*up_args(service), name="up-again")
    job = settle(service, job_id, fault_ended=restarted, timeout=RESTARTED_WITHIN, alive=[again])
    assert time.monotonic() - restarted < RESTARTED_WITHIN
    assert_all_succeeded_once(service, job, SMALL_SIZE)


def test_killing_the_up_parent_alone_takes_its_workers_with_it(
    tmp_path: Path, embedded_ups: StartService
) -> None:
    service = embedded_ups(tmp_path / "state")
    up = service.processes[0]
    job_id = service.submit(small_images(200), SMALL_CHAIN)["id"]
    service.wait_until(job_id, lambda j: j["progress"]["done"] >= 20)
    below = tree(up)[1:]  # the worker and its 2 pool processes
    assert len([line for line in describe(below) if " worker" in line]) == 3, describe(below)
    up.kill()
    up.wait()
    _, orphans = psutil.wait_procs(below, timeout=5)
    assert describe(orphans) == [], "processes outlived their `imgserve up` by 5 s"


@contextlib.contextmanager
def tmpfs(folder: Path, size: str) -> Iterator[Path]:
    """Mount a tmpfs of size at folder for the block; unmount it after, whatever happens."""
    folder.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], check=True)
    try:
        yield folder
    finally:
        if subprocess.run(["umount", str(folder)], check=False).returncode:
            subprocess.run(["umount", "-l", str(folder)], check=True)


def fill(folder: Path) -> Path:
    """Fill folder's file system with one file, to its last byte; return the file."""
    filler = folder / "filler"
    descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        for size in (1 << 20, 1 << 12, 1):
            block = b"\0" * size
            try:
                while os.write(descriptor, block):
                    pass
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
    finally:
        os.close(descriptor)
    return filler


def state_disk(service: Service) -> tuple[int, Any]:
    """Return what /healthz answers: its status and the state disk's check (None if absent)."""
    answer = timed("GET", f"{service.url}/healthz", timeout=5)
    assert answer.response is not None, f"/healthz: {answer.error} in {answer.seconds:.1f} s"
    body = answer.response.json()
    return answer.response.status_code, body.get("checks", {}).get("state_disk")


def test_a_full_state_folder_is_a_503_and_the_job_succeeds_once_space_returns(
    tmp_path: Path, embedded_ups: StartService
) -> None:
    with tmpfs(tmp_path / "state", "64m") as state:
        service = embedded_ups(state)
        try:
            images = [{"input": f"photos/cyclo{2 + n % 2}.jpg", "output": f"out/{n:03d}.jpg"} for n in range(60)]  # fmt: skip
            job_id = service.submit(images, ["blur=101"])["id"]
            service.wait_until(job_id, lambda j: j["progress"]["done"] >= 10)
            filler = fill(state)
            full_since = time.monotonic()
            seen = []
            while time.monotonic() - full_since < 3:
                seen.append(state_disk(service))
                time.sleep(0.2)
            filler.unlink()  # space returns 3 s after the folder filled up
            freed = time.monotonic()
            assert {status for status, _ in seen} == {503}, seen
            assert [check for _, check in seen if not isinstance(check, str) or check == "ok"] == []
            job = settle(service, job_id, fault_ended=freed, alive=service.processes)
            assert_all_succeeded_once(service, job, (1024, 1024))
            assert state_disk(service)[0] == 200
        finally:
            service.stop()
