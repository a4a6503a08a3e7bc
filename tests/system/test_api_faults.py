"""The API under strain: a frozen Redis is a quick 503, open long-polls never starve it."""

from __future__ import annotations

import json
import selectors
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

from tests.system.aftermath import Answer, assert_all_succeeded_once, settle, timed
from tests.system.conftest import StartRedis, StartService
from tests.system.service import Service

pytestmark = pytest.mark.slow

CHAIN = ["blur=101"]  # about 0.2 s an image of 1024x1024
FROZEN_FOR = 5.0  # seconds at least, longer than every bound: the answers come while it lasts
BOUNDS = {"GET /healthz": 2.0, "POST /jobs": 3.0, "GET /jobs/{id}": 3.0}


def one_image(output: str) -> dict[str, Any]:
    """Return a quick job of one image (256x256) to output."""
    return {"images": [{"input": "photos/cyclo4.jpg", "output": output}], "operations": ["resize=0.5"]}  # fmt: skip


def test_a_frozen_redis_is_a_503_within_seconds_and_the_job_resumes_after_sigcont(
    private_redis: StartRedis, redis_stacks: StartService
) -> None:
    redis = private_redis()
    service = redis_stacks(redis.url)
    images = [{"input": f"photos/cyclo{2 + n % 2}.jpg", "output": f"out/{n:02d}.jpg"} for n in range(40)]  # fmt: skip
    job_id = service.submit(images, CHAIN)["id"]
    service.wait_until(job_id, lambda j: j["progress"]["done"] >= 10)
    calls = {
        "GET /healthz": ("GET", "/healthz", None),
        "POST /jobs": ("POST", "/jobs", one_image("frozen/late.png")),
        "GET /jobs/{id}": ("GET", f"/jobs/{job_id}", None),
    }
    redis.freeze()  # SIGSTOP: connections stay open, nothing answers (a stalled VM, a partition)
    frozen = time.monotonic()
    try:
        with ThreadPoolExecutor(len(calls)) as pool:
            futures = {
                name: pool.submit(timed, method, f"{service.url}{path}", json=body)
                for name, (method, path, body) in calls.items()
            }
            answers: dict[str, Answer] = {name: f.result() for name, f in futures.items()}
        time.sleep(max(0.0, frozen + FROZEN_FOR - time.monotonic()))
    finally:
        redis.thaw()
    thawed = time.monotonic()
    seen = {name: (a.status, round(a.seconds, 1)) for name, a in answers.items()}
    assert {name: (a.status, a.seconds < BOUNDS[name]) for name, a in answers.items()} == dict.fromkeys(BOUNDS, (503, True)), seen  # fmt: skip
    for name, answer in answers.items():
        assert answer.response is not None
        assert answer.response.headers["Content-Type"] == "application/problem+json", name
        assert f":{redis.port}" not in answer.response.text, f"{name}: {answer.response.text}"
    health = answers["GET /healthz"].response
    assert health is not None
    checks = health.json()["checks"]
    assert (checks["store"] == "ok", checks["broker"] == "ok") == (False, False), checks
    job = settle(service, job_id, fault_ended=thawed, alive=service.processes)
    assert_all_succeeded_once(service, job, (1024, 1024))
    assert requests.get(f"{service.url}/healthz", timeout=10).status_code == 200
    after = requests.post(f"{service.url}/jobs", json=one_image("after/a.png"), timeout=10)
    assert after.status_code == 202, after.text
    assert_all_succeeded_once(service, service.finish(after.json()["id"]), (256, 256), folder="after")  # fmt: skip


LONG_POLLS = 200
HEALTH_BOUND = 0.2  # seconds
REFUSED_WITHIN = 1.0  # seconds: a long-poll beyond the bound is refused at once, never held


@dataclass
class LongPoll:
    """One raw HTTP long-poll: its socket, when it was sent, what came back and when it ended."""

    sock: socket.socket
    sent: float
    data: bytearray = field(default_factory=bytearray)
    ended: float | None = None

    @property
    def status(self) -> int:
        """Return the response's status code."""
        return int(self.data.split(b" ", 2)[1])

    def header(self, name: str) -> str | None:
        """Return one response header, or None."""
        lines = self.data.partition(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")[1:]
        for key, _, value in (line.partition(":") for line in lines):
            if key.lower() == name.lower():
                return value.strip()
        return None

    def json(self) -> Any:
        """Return the response's JSON body (the server closes the connection after it)."""
        return json.loads(self.data.partition(b"\r\n\r\n")[2])


def open_long_poll(service: Service, path: str) -> LongPoll:
    """Connect and send one GET that asks the server to close the connection once answered."""
    host, port = service.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=5)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    return LongPoll(sock, time.monotonic())


def read_answers(polls: list[LongPoll], stop: threading.Event) -> None:
    """Read every poll's answer as it comes, noting when each ended, until all ended or stop."""
    selector = selectors.DefaultSelector()
    for poll in polls:
        poll.sock.setblocking(False)
        selector.register(poll.sock, selectors.EVENT_READ, poll)
    left = len(polls)
    while left and not stop.is_set():
        for key, _ in selector.select(0.1):
            poll = key.data
            try:
                chunk = poll.sock.recv(65536)
            except ConnectionError:
                chunk = b""
            if chunk:
                poll.data += chunk
            else:
                poll.ended = time.monotonic()
                selector.unregister(poll.sock)
                left -= 1
    selector.close()


def test_200_open_long_polls_leave_healthz_answering_within_200_ms(
    redis_url: str, redis_stacks: StartService
) -> None:
    service = redis_stacks(redis_url, workers=0)  # nothing runs: each long-poll waits its 30 s
    job_id = service.submit(**one_image("out/a.png"))["id"]
    alone = requests.get(f"{service.url}/healthz", timeout=10).status_code
    polls = [open_long_poll(service, f"/jobs/{job_id}?wait=30") for _ in range(LONG_POLLS)]
    stop = threading.Event()
    reader = threading.Thread(target=read_answers, args=(polls, stop))
    reader.start()
    try:
        time.sleep(1)  # the server takes them in
        for _ in range(3):
            health = timed("GET", f"{service.url}/healthz", timeout=5)
            assert (health.status, health.seconds < HEALTH_BOUND) == (alone, True), (
                f"/healthz: {health.status} ({health.error}) in {health.seconds:.2f} s "
                f"with {LONG_POLLS} long-polls open"
            )
        # The change every held long-poll waits for, made by an ordinary request.
        cancelled = time.monotonic()
        cancel = timed("DELETE", f"{service.url}/jobs/{job_id}", timeout=5)
        assert cancel.status == 200, f"DELETE: {cancel.error} in {cancel.seconds:.1f} s"
        reader.join(timeout=15)
        unanswered = [n for n, poll in enumerate(polls) if poll.ended is None]
        assert unanswered == [], f"{len(unanswered)} long-polls unanswered 15 s after the change"
    finally:
        stop.set()
        reader.join()
        for poll in polls:
            poll.sock.close()
    held = [poll for poll in polls if poll.status == 200]
    refused = [poll for poll in polls if poll.status != 200]
    assert {poll.json()["state"] for poll in held} <= {"cancelled"}
    assert [poll for poll in held if poll.ended is not None and poll.ended < cancelled] == []
    assert {poll.status for poll in refused} <= {429, 503}
    assert [poll for poll in refused if poll.header("Retry-After") is None] == []
    slow = [round(p.ended - p.sent, 1) for p in refused if p.ended and p.ended - p.sent > REFUSED_WITHIN]  # fmt: skip
    assert slow == [], "a long-poll beyond the bound is refused at once"
