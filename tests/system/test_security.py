"""Secure by default, with the real API, workers and Redis: keys, tenants, storage, budgets."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests

from tests.support import free_port
from tests.system.conftest import StartService
from tests.system.service import Service, make_root, service_env

pytestmark = pytest.mark.slow

ALICE = "alice-token-0123456789"
BOB = "bob-token-0123456789ab"
CAROL = "carol-token-0123456789"
KEYS = f"alice:{ALICE},bob:{BOB},carol:{CAROL}"
PHOTO = "photos/cyclo1.jpg"
REFUSAL = (
    "imgserve: refusing to listen on 0.0.0.0 without API keys: set IMGSERVE_API_KEYS (or "
    "IMGSERVE_API_KEYS_FILE), or pass --allow-anonymous (IMGSERVE_ALLOW_ANONYMOUS=1) "
    "on a trusted network\n"
)


def call(service: Service, method: str, path: str, token: str | None, **kwargs: Any) -> Any:
    """Make a request of the service bearing token (None: no Authorization header)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.request(method, f"{service.url}{path}", headers=headers, timeout=30, **kwargs)


def job(*images: tuple[str, str], operations: list[Any] | None = None, **extra: Any) -> Any:
    """Return a job's JSON: (input, output) pairs, blur by default."""
    return {
        "images": [{"input": i, "output": o} for i, o in images],
        "operations": operations or ["blur=3"],
        **extra,
    }


def errors(response: Any) -> list[dict[str, str]]:
    """Return a 422's errors, asserting the status."""
    assert response.status_code == 422, response.text
    found: list[dict[str, str]] = response.json()["errors"]
    return found


def test_without_a_valid_token_every_job_request_is_a_401_and_each_key_sees_its_own(
    redis_url: str, redis_stacks: StartService
) -> None:
    service = redis_stacks(redis_url, IMGSERVE_API_KEYS=KEYS, IMGSERVE_SUBMIT_RATE="3/s")
    for token in (None, "wrong-token-0123456789"):
        answer = call(service, "GET", "/jobs", token)
        assert answer.status_code == 401
        assert answer.headers["Content-Type"] == "application/problem+json"
        assert answer.headers["WWW-Authenticate"] == 'Bearer realm="imgserve"'
        assert answer.json()["detail"] == (
            "this request needs an Authorization: Bearer header with a valid API key"
        )
    assert call(service, "POST", "/jobs", None, json=job((PHOTO, "o.png"))).status_code == 401
    bobs = call(service, "POST", "/jobs", BOB, json=job((PHOTO, "bob/a.png"))).json()
    service.token = BOB
    assert service.finish(bobs["id"])["state"] == "succeeded"
    unknown = call(service, "GET", "/jobs/0123456789abcdef0123456789abcdef", ALICE)
    for answer in (
        call(service, "GET", f"/jobs/{bobs['id']}", ALICE),
        call(service, "DELETE", f"/jobs/{bobs['id']}", ALICE),
    ):
        assert answer.status_code == 404
        body = answer.json()
        assert body["detail"] == unknown.json()["detail"].replace(
            "0123456789abcdef0123456789abcdef", bobs["id"]
        )
        assert {k: v for k, v in body.items() if k not in ("detail", "instance")} == {
            k: v for k, v in unknown.json().items() if k not in ("detail", "instance")
        }
    alices = call(service, "POST", "/jobs", ALICE, json=job((PHOTO, "alice/a.png"))).json()
    listed = call(service, "GET", "/jobs", ALICE).json()["jobs"]
    assert [j["id"] for j in listed] == [alices["id"]]
    assert [j["id"] for j in call(service, "GET", "/jobs", BOB).json()["jobs"]] == [bobs["id"]]
    submitted = subprocess.run(
        [sys.executable, "-m", "app.cli", "status", alices["id"], "--url", service.url],
        env={**service.env, "IMGSERVE_TOKEN": ALICE},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert submitted.returncode == 0, submitted.stderr
    # Carol's bucket holds 3 submissions and gains 3 a second: a burst soon meets a 429.
    invalid = job(("missing.jpg", "c/x.png"))
    statuses = []
    while 429 not in statuses and len(statuses) < 30:
        limited = call(service, "POST", "/jobs", CAROL, json=invalid)
        statuses.append(limited.status_code)
    assert statuses[:3] == [422, 422, 422] and statuses[-1] == 429
    assert limited.headers["Retry-After"] == "1"
    assert limited.json()["detail"] == (
        "key 'carol' submits faster than IMGSERVE_SUBMIT_RATE (3/s) allows; submit again in 1 s"
    )
    time.sleep(1.0)
    assert call(service, "POST", "/jobs", CAROL, json=invalid).status_code == 422


def test_outputs_never_go_into_hidden_folders_over_active_inputs_existing_files_or_budgets(
    redis_url: str, redis_stacks: StartService
) -> None:
    service = redis_stacks(redis_url, IMGSERVE_MAX_JOB_PIXELS="200000000")
    post = lambda body: call(service, "POST", "/jobs", None, json=body)  # noqa: E731
    assert errors(post(job((PHOTO, ".git/hooks/x.png")))) == [
        {
            "pointer": "/images/0/output",
            "detail": "output '.git/hooks/x.png' is in a hidden folder or file "
            "(a name starting with '.')",
        }
    ]
    assert not (service.root / ".git").exists()
    photos = [f"photos/cyclo{n}.jpg" for n in (2, 3)]
    busy = post(
        job(*[(photos[n % 2], f"busy/{n}.png") for n in range(40)], operations=["resize=1.2"])
    )
    assert busy.status_code == 202, busy.text
    before = (service.root / photos[0]).read_bytes()
    assert errors(post(job(("photos/cyclo4.jpg", photos[0])))) == [
        {
            "pointer": "/images/0/output",
            "detail": f"output {photos[0]!r} is the input of job {busy.json()['id']}, which is "
            "queued or running",
        }
    ]
    assert errors(post(job((PHOTO, "photos/cyclo4.jpg"), overwrite=False))) == [
        {
            "pointer": "/images/0/output",
            "detail": "output 'photos/cyclo4.jpg' already exists, and the job does not replace "
            "files (overwrite: false)",
        }
    ]
    big = post(job(*[(photos[0], f"big/{n}.png") for n in range(100)], operations=["resize=1.5"]))
    assert errors(big) == [
        {
            "pointer": "/images",
            "detail": "the job's outputs would total 235,929,600 pixels, more than "
            "IMGSERVE_MAX_JOB_PIXELS allows (200,000,000)",
        }
    ]
    assert service.finish(busy.json()["id"])["state"] == "succeeded"
    assert (service.root / photos[0]).read_bytes() == before
    assert not (service.root / "big").exists()


def test_with_separate_roots_an_output_inside_the_input_root_is_refused(
    redis_url: str, tmp_path: Path, seed_images: list[Path]
) -> None:
    inputs = make_root(tmp_path, seed_images)
    outputs = inputs.parent  # the output root holds the input root
    port = free_port()
    env = service_env(
        inputs,
        REDIS_URL=redis_url,
        IMGSERVE_INPUT_ROOT=str(inputs),
        IMGSERVE_OUTPUT_ROOT=str(outputs),
    )
    separate = Service(f"http://127.0.0.1:{port}", inputs, env)
    separate.spawn("api", "--port", str(port), name="api-separate")
    separate.spawn("worker", "--concurrency", "1", name="worker-separate")
    try:
        separate.wait_healthy()
        refused = call(separate, "POST", "/jobs", None, json=job((PHOTO, "root/photos/x.png")))
        assert errors(refused) == [
            {
                "pointer": "/images/0/output",
                "detail": "output 'root/photos/x.png' is inside the input root, which imgserve "
                "only reads",
            }
        ]
        written = separate.submit([{"input": PHOTO, "output": "written/x.png"}], ["blur=3"])
        assert separate.finish(written["id"])["state"] == "succeeded"
        assert (outputs / "written" / "x.png").is_file()
        assert not (inputs / "photos" / "x.png").exists()
    finally:
        separate.stop()


def test_the_21st_active_job_of_a_key_is_a_429_with_retry_after(
    redis_url: str, redis_stacks: StartService
) -> None:
    service = redis_stacks(redis_url, IMGSERVE_API_KEYS=KEYS, IMGSERVE_SUBMIT_RATE="25/s")
    heavy = [(f"photos/cyclo{1 + n % 3}.jpg", "") for n in range(12)]
    ids = []
    for n in range(20):
        body = job(
            *[(i, f"a{n}/{k}.png") for k, (i, _) in enumerate(heavy)], operations=["resize=1.5"]
        )
        answer = call(service, "POST", "/jobs", ALICE, json=body)
        assert answer.status_code == 202, answer.text
        ids.append(answer.json()["id"])
    over = call(service, "POST", "/jobs", ALICE, json=job((PHOTO, "a20/x.png")))
    assert over.status_code == 429
    assert over.headers["Retry-After"] == "5"
    assert over.json()["detail"] == (
        "key 'alice' has 20 queued or running jobs, as many as IMGSERVE_MAX_ACTIVE_JOBS allows; "
        "submit again once one has finished"
    )
    assert call(service, "POST", "/jobs", BOB, json=job((PHOTO, "b/x.png"))).status_code == 202
    call(service, "DELETE", f"/jobs/{ids[0]}", ALICE)
    again = call(service, "POST", "/jobs", ALICE, json=job((PHOTO, "a20/x.png")))
    assert again.status_code == 202, again.text
    for job_id in [*ids[1:], again.json()["id"]]:
        call(service, "DELETE", f"/jobs/{job_id}", ALICE)


def test_imgserve_api_beyond_loopback_without_keys_refuses_to_start(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    ran = subprocess.run(
        [sys.executable, "-m", "app.cli", "api", "--host", "0.0.0.0", "--port", str(free_port())],
        env=service_env(root, REDIS_URL="redis://127.0.0.1:1/0"),
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (ran.returncode, ran.stdout, ran.stderr) == (2, "", REFUSAL)


def test_imgserve_up_listens_on_loopback_by_default(
    tmp_path: Path, seed_images: list[Path]
) -> None:
    root = make_root(tmp_path, seed_images)
    port = free_port()
    env = service_env(root, IMGSERVE_STATE_DIR=str(tmp_path / "state"))
    service = Service(f"http://127.0.0.1:{port}", root, env)
    up = service.spawn("up", "--port", str(port), "--concurrency", "1", name="up")
    try:
        service.wait_healthy()
        listening = [
            c.laddr
            for c in psutil.Process(up.pid).net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN
        ]
        assert [(a.ip, a.port) for a in listening] == [("127.0.0.1", port)]
    finally:
        service.stop()
