"""The API as `imgserve api` serves it (waitress): large bodies and many long-polls."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from app.jobs import wait_slots
from tests.support import free_port
from tests.system.service import Service, make_root, service_env

THREADS = 8
LIMIT = 64 * 1024  # IMGSERVE_MAX_BODY_BYTES here
JOB = {"images": [{"input": "photos/cyclo1.jpg", "output": "o.jpg"}], "operations": ["blur=3"]}


@pytest.fixture
def api(tmp_path: Path, seed_images: list[Path]) -> Iterator[Service]:
    """Run `imgserve api` alone, embedded, with THREADS threads (no worker: jobs stay queued)."""
    root = make_root(tmp_path, seed_images)
    port = free_port()
    env = service_env(
        root, IMGSERVE_STATE_DIR=str(tmp_path / "state"), IMGSERVE_MAX_BODY_BYTES=str(LIMIT)
    )
    service = Service(f"http://127.0.0.1:{port}", root, env)
    address = ("--host", "127.0.0.1", "--port", str(port), "--threads", str(THREADS))
    service.spawn("api", *address, name="api")
    try:
        service.wait_healthy()
        yield service
    finally:
        service.stop()


def connection(service: Service, timeout: float = 30) -> http.client.HTTPConnection:
    """Return a connection to the service's API."""
    where = urlsplit(service.url)
    return http.client.HTTPConnection(where.hostname or "", where.port, timeout=timeout)


@pytest.mark.parametrize("chunked", [False, True])
def test_a_body_over_the_limit_sent_in_full_gets_a_problem_naming_the_setting(
    api: Service, chunked: bool
) -> None:
    body = b" " * (4 * 1024 * 1024)  # far past the limit, as a client sends it before reading
    http_ = connection(api)
    if chunked:
        pieces = (body[i : i + 65536] for i in range(0, len(body), 65536))
        headers = {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
        http_.request("POST", "/jobs", body=pieces, headers=headers, encode_chunked=True)
    else:
        http_.request("POST", "/jobs", body=body, headers={"Content-Type": "application/json"})
    response = http_.getresponse()
    assert response.status == 413
    assert response.getheader("Content-Type") == "application/problem+json"
    assert json.loads(response.read())["detail"] == (
        f"the body is larger than IMGSERVE_MAX_BODY_BYTES ({LIMIT} bytes)"
    )
    http_.close()
    assert requests.get(f"{api.url}/healthz", timeout=10).status_code == 200


def test_with_every_long_poll_slot_taken_a_wait_is_a_429_and_healthz_answers_at_once(
    api: Service,
) -> None:
    job_id = api.submit(JOB["images"], JOB["operations"])["id"]
    slots = wait_slots(THREADS)
    answers: list[int] = []

    def long_poll() -> None:
        http_ = connection(api)
        while True:  # a probe below may hold a slot for a moment: then ask again, as told
            http_.request("GET", f"/jobs/{job_id}?wait=30")
            response = http_.getresponse()
            response.read()
            if response.status != 429:
                break
            time.sleep(0.05)
        answers.append(response.status)
        http_.close()

    polls = [threading.Thread(target=long_poll) for _ in range(slots)]
    for poll in polls:
        poll.start()
    deadline = time.monotonic() + 20
    probe = f"{api.url}/jobs/{job_id}?wait=0.01"
    while (refused := requests.get(probe, timeout=10)).status_code != 429:
        assert time.monotonic() < deadline, "the long-polls never took every slot"
        time.sleep(0.05)
    assert refused.headers["Retry-After"] == "1"
    assert refused.json()["detail"] == (
        f"this server already holds {slots} long-polls, as many as it may; "
        "ask again in a second, or without wait"
    )
    started = time.monotonic()
    assert requests.get(f"{api.url}/healthz", timeout=10).status_code == 200
    assert time.monotonic() - started < 0.5
    assert requests.get(f"{api.url}/jobs/{job_id}", timeout=10).json()["state"] == "queued"
    assert requests.delete(f"{api.url}/jobs/{job_id}", timeout=10).status_code == 200
    for poll in polls:
        poll.join(timeout=20)
    assert answers == [200] * slots
