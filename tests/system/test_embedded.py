"""The embedded `imgserve up` survives its faults: real processes, real SIGKILL, a real full disk."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import psutil
import pytest
import requests

from tests.support import fill, free_port, small_tmpfs
from tests.system.service import Service, make_root, service_env

pytestmark = pytest.mark.slow

SLOW_CHAIN = ["resize=3", "blur=255"]  # several seconds an image
CHEAP_CHAIN = ["blur=9", "resize=0.5"]  # a few tens of ms an image
SIZES = {1: (377, 512), 2: (512, 512), 3: (512, 512), 4: (256, 256)}  # cyclo<n>, halved


def start_up(root: Path, env: dict[str, str], name: str) -> Service:
    """Start `imgserve up` with 2 worker processes; return it once healthy."""
    port = free_port()
    service = Service(f"http://127.0.0.1:{port}", root, env)
    service.spawn("up", "--host", "127.0.0.1", "--port", str(port), "--concurrency", "2", name=name)
    try:
        service.wait_healthy()
    except BaseException:
        service.stop()
        raise
    return service


@pytest.fixture
def embedded(tmp_path: Path, seed_images: list[Path]) -> Iterator[Service]:
    """Run `imgserve up` on a state folder of its own."""
    root = make_root(tmp_path, seed_images)
    service = start_up(root, service_env(root, IMGSERVE_STATE_DIR=str(tmp_path / "state")), "up")
    yield service
    service.stop()


def cheap_images(count: int) -> list[dict[str, str]]:
    """Return count images of the seed photos, each to its own output."""
    return [
        {"input": f"photos/cyclo{n % 4 + 1}.jpg", "output": f"out/{n}.jpg"} for n in range(count)
    ]


def assert_outputs_once(root: Path, count: int) -> None:
    """Assert that out/ holds exactly the count outputs, each whole and of its size."""
    assert sorted(os.listdir(root / "out")) == sorted(f"{n}.jpg" for n in range(count))
    for n in range(count):
        written = cv2.imread(str(root / "out" / f"{n}.jpg"))
        assert written is not None and written.shape[:2] == SIZES[n % 4 + 1], n


def tree(service: Service) -> list[psutil.Process]:
    """Return every process of the service: `imgserve up`, its worker and its 2 pool processes.

    The pool may still be starting when /healthz first answers: wait for it. (A starting
    pool process also runs ldconfig for a moment: not one of the service's own.)
    """
    up = psutil.Process(service.processes[0].pid)
    deadline = time.monotonic() + 30
    while True:
        children = []
        for child in up.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if "app.cli" in child.cmdline():
                    children.append(child)
        if len(children) >= 3 or time.monotonic() > deadline:
            return [up, *children]
        time.sleep(0.1)


def test_killing_the_up_process_alone_leaves_no_worker_running(embedded: Service) -> None:
    images = [{"input": "photos/cyclo2.jpg", "output": f"slow/{n}.jpg"} for n in (1, 2)]
    job_id = embedded.submit(images, SLOW_CHAIN)["id"]
    embedded.wait_until(job_id, lambda j: j["state"] == "running")
    up, *workers = tree(embedded)
    assert len(workers) == 3  # the worker and its 2 pool processes, one of them busy
    up.send_signal(signal.SIGKILL)
    started = time.monotonic()
    _, alive = psutil.wait_procs(workers, timeout=5)
    took = time.monotonic() - started
    assert [p.pid for p in alive] == []
    assert took < 5
    print(f"the worker and its pool were gone {took:.2f} s after the parent's SIGKILL")


def test_a_second_service_on_the_same_state_folder_refuses_naming_the_first(
    embedded: Service,
) -> None:
    state = embedded.env["IMGSERVE_STATE_DIR"]
    refusal = (
        f"imgserve: another imgserve (pid {embedded.processes[0].pid}) is running on the "
        f"state folder {state}; stop it first, or give this one its own IMGSERVE_STATE_DIR\n"
    )
    for command in (["up", "--port", str(free_port())], ["worker"]):
        done = subprocess.run(
            [sys.executable, "-m", "app.cli", *command],
            env=embedded.env,
            cwd=embedded.root,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert (done.returncode, done.stderr) == (2, refusal), command
    assert len(tree(embedded)) == 4  # the first one runs on


def test_a_job_whose_whole_service_was_killed_finishes_after_a_restart(
    tmp_path: Path, seed_images: list[Path]
) -> None:
    root = make_root(tmp_path, seed_images)
    env = service_env(root, IMGSERVE_STATE_DIR=str(tmp_path / "state"))
    first = start_up(root, env, "up")
    try:
        job_id = first.submit(cheap_images(200), CHEAP_CHAIN)["id"]
        while (done := first.get(job_id)["progress"]["done"]) < 50:
            time.sleep(0.02)
        processes = tree(first)
        os.killpg(processes[0].pid, signal.SIGKILL)
        _, alive = psutil.wait_procs(processes, timeout=10)
        assert alive == []
    finally:
        first.stop()
    assert 50 <= done < 200
    (tmp_path / "state" / "queue" / "0_empty.imgserve.msg").write_bytes(b"")  # a full disk's
    restarted = time.monotonic()
    second = start_up(root, env, "up2")
    try:
        job = second.finish(job_id, timeout=30)
        took = time.monotonic() - restarted
        assert (job["state"], job["progress"]["done"], job["progress"]["failed"]) == (
            "succeeded", 200, 0,
        ), job  # fmt: skip
        assert took < 30
        assert_outputs_once(root, 200)
        banner = (tmp_path / "up2.log").read_text().splitlines()
        assert re.fullmatch(
            r"imgserve: redelivered \d+ unfinished images of 1 job left by an earlier run",
            banner[0],
        ), banner[0]
    finally:
        second.stop()
    print(f"killed at {done}/200 done; restarted service finished it in {took:.1f} s")


def test_damaged_queue_messages_are_set_aside_and_the_worker_works_on(
    embedded: Service, tmp_path: Path
) -> None:
    before = [p.pid for p in tree(embedded)]
    queue = tmp_path / "state" / "queue"
    names = ["00000000000000000000_empty.imgserve.msg", "00000000000000000001_bad.imgserve.msg"]
    (tmp_path / "bad").write_bytes(b'{"body": ')
    (queue / names[0]).write_bytes(b"")
    (tmp_path / "bad").rename(queue / names[1])
    deadline = time.monotonic() + 20
    damaged = tmp_path / "state" / "queue-damaged"
    while not (damaged.is_dir() and len(os.listdir(damaged)) == 2):
        assert time.monotonic() < deadline, embedded.tail()
        time.sleep(0.1)
    job = embedded.finish(embedded.submit(cheap_images(4), CHEAP_CHAIN)["id"])
    assert job["state"] == "succeeded"
    assert [p.pid for p in tree(embedded)] == before
    log = (tmp_path / "up.log").read_text()
    moved = "moved a damaged queue message aside: queue-damaged/"
    assert log.count(f"{moved}{names[0]} (0 bytes, empty)") == 1
    assert log.count(f"{moved}{names[1]} (9 bytes, JSONDecodeError: ") == 1


def keep_full(folder: Path, stop: threading.Event) -> None:
    """Keep the file system of folder full until stop is set, then free it."""
    while not stop.is_set():
        fill(folder)
        time.sleep(0.01)
    (folder / "filler").unlink()


def test_a_full_state_folder_is_reported_and_its_job_succeeds_once_space_returns(
    tmp_path: Path, seed_images: list[Path]
) -> None:
    root = make_root(tmp_path, seed_images)
    with small_tmpfs(tmp_path / "state", 16 * 1024) as state:
        service = start_up(root, service_env(root, IMGSERVE_STATE_DIR=str(state)), "up")
        try:
            job_id = service.submit(cheap_images(60), CHEAP_CHAIN)["id"]
            service.wait_until(job_id, lambda j: j["progress"]["done"] >= 10)
            stop = threading.Event()
            filler = threading.Thread(target=keep_full, args=(state, stop))
            filler.start()
            try:
                time.sleep(1)
                health = requests.get(f"{service.url}/healthz", timeout=5)
                post = requests.post(
                    f"{service.url}/jobs",
                    json={  # an output of its own: one writer an output
                        "images": [{"input": "photos/cyclo1.jpg", "output": "other/0.jpg"}],
                        "operations": CHEAP_CHAIN,
                    },
                    timeout=10,
                )
                time.sleep(3)
                during = service.get(job_id)
            finally:
                stop.set()
                filler.join()
            freed = time.monotonic()
            assert health.status_code == 503
            checks = health.json()["checks"]
            assert (checks["store"], checks["broker"]) == ("ok", "ok")
            assert re.fullmatch(
                r"the state folder's disk is full \(\d+ KiB free\)", checks["state_disk"]
            )
            assert health.json()["detail"] == checks["state_disk"]
            assert post.status_code == 503
            assert during["progress"]["failed"] == 0 and during["state"] == "running"
            job = service.finish(job_id, timeout=120)
            print(f"the job succeeded {time.monotonic() - freed:.1f} s after space returned")
            assert (job["state"], job["progress"]["done"], job["progress"]["failed"]) == (
                "succeeded", 60, 0,
            ), job  # fmt: skip
            assert_outputs_once(root, 60)
            assert requests.get(f"{service.url}/healthz", timeout=5).status_code == 200
            assert not (state / "queue-damaged").exists()
            assert [p.name for p in (state / "queue").iterdir()] == []
        finally:
            service.stop()
