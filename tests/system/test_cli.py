"""The newcomer's path and the CLI over the API: `imgserve up`, then submit, status, jobs, cancel.

Every command runs as a user runs it (a subprocess, in another "shell") against a real
service: `imgserve up` on the embedded default, or the API alone on the test Redis, where
with no worker a job stays queued for as long as a test needs.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import requests

from tests.support import free_port
from tests.system.conftest import StartRedis, StartService
from tests.system.service import Service, service_env

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
JOB_ID = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def newcomer(tmp_path: Path) -> Iterator[Service]:
    """Run `imgserve up` with no settings at all, in a folder holding the repository's examples."""
    folder = tmp_path / "checkout"
    shutil.copytree(REPO / "examples", folder / "examples", ignore=shutil.ignore_patterns("output"))
    env = service_env(folder)
    del env["IMGSERVE_ROOT"]  # the default: the working directory
    port = free_port()
    service = Service(f"http://127.0.0.1:{port}", folder, env)
    service.spawn("up", "--port", str(port), name="up")
    try:
        service.wait_healthy()
        yield service
    finally:
        service.stop()


@pytest.fixture
def no_worker(redis_url: str, redis_stacks: StartService) -> Service:
    """Return the API alone on the test Redis: a job submitted stays queued."""
    return redis_stacks(redis_url, workers=0)


def imgserve(service: Service, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run an imgserve command against the service, as a user would in another shell."""
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=service.root,
        env={**service.env, "IMGSERVE_URL": service.url, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def write_job(service: Service, name: str, images: list[dict[str, str]], ops: list[Any]) -> str:
    """Write a job file in the service's root; return its name."""
    (service.root / name).write_text(json.dumps({"images": images, "operations": ops}))
    return name


def submit_quietly(service: Service, images: list[dict[str, str]]) -> str:
    """Submit a job of images with `imgserve submit --quiet`; return the id it printed."""
    name = write_job(
        service, f"job{len(list(service.root.glob('job*.json')))}.json", images, ["blur=3"]
    )
    done = imgserve(service, "submit", name, "--quiet")
    assert (done.returncode, done.stderr) == (0, "")
    return done.stdout.removesuffix("\n")


def photos(count: int, folder: str = "out") -> list[dict[str, str]]:
    """Return count images of the test root's first photo, each with its own output."""
    return [{"input": "photos/cyclo1.jpg", "output": f"{folder}/{n}.jpg"} for n in range(count)]


def test_the_sample_job_runs_with_submit_wait(newcomer: Service) -> None:
    done = imgserve(newcomer, "submit", "examples/job.json", "--wait")
    assert (done.returncode, done.stderr) == (0, "")
    job_id = done.stdout.split()[1]
    assert done.stdout.splitlines() == [
        f"job {job_id} queued: {newcomer.url}/jobs/{job_id}",
        "succeeded: 4 of 4 images done, 0 failed",
        "wrote 16 outputs to examples/output/",
    ]
    job = json.loads((newcomer.root / "examples/job.json").read_text())
    written = []
    for image in job["images"]:
        source = cv2.imread(str(newcomer.root / image["input"]))
        height, width = source.shape[:2]
        stem, ext = image["output"].rsplit(".", 1)
        for n in range(1, 5):
            output = f"{stem}_{n}.{ext}"
            written.append(f"  {output}")
            quadrant_w = width // 2 if n in (1, 3) else width - width // 2
            quadrant_h = height // 2 if n in (1, 2) else height - height // 2
            shape = cv2.imread(str(newcomer.root / output)).shape[:2]
            assert shape == (2 * quadrant_h, 2 * quadrant_w), output
    assert (newcomer.root / ".imgserve" / "jobs.sqlite3").is_file()
    status = imgserve(newcomer, "status", job_id)
    assert (status.returncode, status.stdout) == (
        0,
        "succeeded: 4 of 4 images done, 0 failed\nwrote 16 outputs to examples/output/\n",
    )
    verbose = imgserve(newcomer, "status", job_id, "--verbose")
    assert verbose.stdout.splitlines() == ["succeeded: 4 of 4 images done, 0 failed", *written]


def test_submit_quiet_prints_the_id_and_json_the_resource(newcomer: Service) -> None:
    quiet = imgserve(newcomer, "submit", "examples/job.json", "--quiet", "--wait")
    assert (quiet.returncode, quiet.stderr) == (0, "")
    assert JOB_ID.fullmatch(quiet.stdout.removesuffix("\n")), quiet.stdout
    assert newcomer.get(quiet.stdout.strip())["state"] == "succeeded"
    queued = imgserve(newcomer, "submit", "examples/job.json", "--json")
    resource = json.loads(queued.stdout)
    assert (queued.returncode, resource["state"], resource["progress"]["total"]) == (0, "queued", 4)
    assert list(resource) == [
        "id",
        "state",
        "progress",
        "operations",
        "encode",
        "images",
        "created_at",
        "started_at",
        "finished_at",
    ]
    newcomer.finish(resource["id"])
    waited = imgserve(newcomer, "submit", "examples/job.json", "--json", "--wait")
    final = json.loads(waited.stdout)
    assert (waited.returncode, final["state"], final["progress"]["done"]) == (0, "succeeded", 4)
    assert final == newcomer.get(final["id"])


def test_a_job_with_a_bad_image_exits_1_naming_the_image_and_its_error(newcomer: Service) -> None:
    damaged_png(newcomer.root / "bad.png")
    images = [
        {"input": "examples/images/dawn.jpg", "output": "out/dawn.jpg"},
        {"input": "bad.png", "output": "out/bad.png"},
    ]
    name = write_job(newcomer, "mixed.json", images, ["split"])
    done = imgserve(newcomer, "submit", name, "--wait")
    assert (done.returncode, done.stderr) == (1, "")
    assert done.stdout.splitlines()[1:] == [
        "partially_failed: 1 of 2 images done, 1 failed",
        "  bad.png: failed: bad.png cannot be decoded: its PNG data is damaged (its IDAT chunk fails its CRC check)",
        "wrote 4 outputs to out/",
    ]


def damaged_png(path: Path) -> None:
    """Write a PNG whose header is sound and whose pixel data is not: it fails in the worker."""
    _, encoded = cv2.imencode(".png", np.arange(64 * 64 * 3, dtype=np.uint8).reshape(64, 64, 3))
    data = bytearray(encoded.tobytes())
    start = data.index(b"IDAT") + 8
    data[start : start + 64] = bytes(64)
    path.write_bytes(bytes(data))


def test_jobs_lists_recent_jobs_with_their_state_and_progress_a_page_at_a_time(
    no_worker: Service,
) -> None:
    ids = [submit_quietly(no_worker, photos(n + 1, f"o{n}")) for n in range(3)]
    listed = requests.get(f"{no_worker.url}/jobs", timeout=5).json()["jobs"]
    assert [job["id"] for job in listed] == ids[::-1]
    created = [re.sub(r"(\.\d+)?Z$", "Z", job["created_at"]) for job in listed]
    rows = [
        f"{ids[2]}  queued  {'0/3':8}  {created[0]}",
        f"{ids[1]}  queued  {'0/2':8}  {created[1]}",
        f"{ids[0]}  queued  {'0/1':8}  {created[2]}",
    ]
    header = "ID" + " " * 32 + "STATE   PROGRESS  CREATED"
    everything = imgserve(no_worker, "jobs")
    assert (everything.returncode, everything.stderr) == (0, "")
    assert everything.stdout.splitlines() == [header, *rows]
    first = imgserve(no_worker, "jobs", "--limit", "2")
    assert first.stdout.splitlines() == [header, *rows[:2]]
    assert first.stderr == "more: imgserve jobs --offset 2 --limit 2\n"
    second = imgserve(no_worker, "jobs", "--limit", "2", "--offset", "2")
    assert (second.stdout.splitlines(), second.stderr) == ([header, rows[2]], "")
    past = imgserve(no_worker, "jobs", "--offset", "3")
    assert (past.returncode, past.stdout, past.stderr) == (0, "", "no jobs at offset 3\n")
    as_json = imgserve(no_worker, "jobs", "--json")
    assert json.loads(as_json.stdout) == requests.get(f"{no_worker.url}/jobs", timeout=5).json()
    bad = imgserve(no_worker, "jobs", "--limit", "500")
    assert (bad.returncode, bad.stdout) == (2, "")
    assert bad.stderr.splitlines() == [
        "imgserve: 422 Invalid query parameter: limit must be a whole number from 1 to 100, not '500'",
        "  limit: limit must be a whole number from 1 to 100, not '500'",
    ]


def test_status_and_cancel_show_a_queued_job_and_cancel_it(no_worker: Service) -> None:
    job_id = submit_quietly(no_worker, photos(3))
    status = imgserve(no_worker, "status", job_id)
    assert (status.returncode, status.stdout) == (
        0,
        "queued: 0 of 3 images done, 0 failed, 3 queued\nwrote no outputs\n",
    )
    cancelled = imgserve(no_worker, "cancel", job_id)
    assert (cancelled.returncode, cancelled.stderr) == (0, "")
    assert (
        cancelled.stdout == f"job {job_id} cancelled: 0 of 3 images done, 0 failed, 3 cancelled\n"
    )
    again = imgserve(no_worker, "cancel", job_id, "--json")
    assert json.loads(again.stdout) == no_worker.get(job_id)
    waited = imgserve(no_worker, "status", job_id, "--wait")
    assert (waited.returncode, waited.stdout) == (
        1,
        "cancelled: 0 of 3 images done, 0 failed, 3 cancelled\nwrote no outputs\n",
    )


def test_ctrl_c_while_waiting_stops_waiting_leaves_the_job_and_says_how_to_cancel_it(
    no_worker: Service,
) -> None:
    name = write_job(no_worker, "j.json", photos(2), ["blur=3"])
    waiting = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "submit", name, "--wait"],
        cwd=no_worker.root,
        env={**no_worker.env, "IMGSERVE_URL": no_worker.url},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert waiting.stdout is not None
    first = waiting.stdout.readline()
    job_id = first.split()[1]
    time.sleep(1)  # into its long-poll
    waiting.send_signal(signal.SIGINT)
    out, err = waiting.communicate(timeout=30)
    assert waiting.returncode == 130
    assert first + out == f"job {job_id} queued: {no_worker.url}/jobs/{job_id}\n"
    assert err == (
        f"imgserve: stopped waiting; job {job_id} goes on: `imgserve status {job_id} --wait` "
        f"follows it again, `imgserve cancel {job_id}` cancels it\n"
    )
    assert no_worker.get(job_id)["state"] == "queued"


def test_state_colours_only_on_a_terminal_and_never_with_no_color(no_worker: Service) -> None:
    job_id = submit_quietly(no_worker, photos(1))
    imgserve(no_worker, "cancel", job_id)
    line = "cancelled: 0 of 1 images done, 0 failed, 1 cancelled"
    assert imgserve(no_worker, "status", job_id).stdout.splitlines()[0] == line
    assert on_a_terminal(no_worker, "status", job_id).splitlines()[0] == (
        "\033[90mcancelled\033[0m: 0 of 1 images done, 0 failed, 1 cancelled"
    )
    assert on_a_terminal(no_worker, "status", job_id, NO_COLOR="1").splitlines()[0] == line


def on_a_terminal(service: Service, *args: str, **env: str) -> str:
    """Run an imgserve command with a terminal as its stdout; return what it wrote there."""
    import pty

    leader, follower = pty.openpty()
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=service.root,
        env={**service.env, "IMGSERVE_URL": service.url, "TERM": "xterm", **env},
        stdout=follower,
        stderr=subprocess.PIPE,
        timeout=60,
    )
    os.close(follower)
    written = b""
    while chunk := _read(leader):
        written += chunk
    os.close(leader)
    assert done.returncode == 0, done.stderr
    return written.decode().replace("\r\n", "\n")


def _read(fd: int) -> bytes:
    """Read what a terminal holds, b"" once it is drained and closed."""
    try:
        return os.read(fd, 4096)
    except OSError:  # EIO: the other side is closed
        return b""


def test_errors_are_one_sentence_with_their_exit_code(newcomer: Service) -> None:
    (newcomer.root / "broken.json").write_text('{"images": ')
    huge = {"images": photos(800_000), "operations": []}
    (newcomer.root / "huge.json").write_text(json.dumps(huge))
    size = (newcomer.root / "huge.json").stat().st_size
    assert size > 40_000_000
    # fmt: off
    cases = [
        (["status", "nope"], 2, "imgserve: 404 Job not found: no job has the id 'nope' (jobs expire after a while)\n"),
        (["submit", "broken.json"], 2, "imgserve: broken.json is not JSON: Expecting value at line 1 column 12\n"),
        (["submit", "missing.json"], 2, "imgserve: cannot read missing.json: No such file or directory\n"),
        (["submit", "huge.json"], 2, f"imgserve: huge.json is too large to submit ({size} bytes): the body is larger than IMGSERVE_MAX_BODY_BYTES (1048576 bytes)\n"),
        (["submit"], 2, "imgserve: the following arguments are required: job; see `imgserve submit --help`\n"),
        (["submit", "examples/job.json", "--json", "-q"], 2, "imgserve: --json and --quiet ask for two different outputs; give one\n"),
        (["jobs", "--limit", "many"], 2, "imgserve: argument --limit: invalid int value: 'many'; see `imgserve jobs --help`\n"),
    ]
    # fmt: on
    for args, code, stderr in cases:
        done = imgserve(newcomer, *args)
        assert (done.returncode, done.stdout, done.stderr) == (code, "", stderr), args
    wrong = imgserve(newcomer, "jobs", IMGSERVE_URL="localhost:8888")
    assert (wrong.returncode, wrong.stderr) == (
        2,
        "imgserve: IMGSERVE_URL 'localhost:8888' is not an http:// or https:// URL\n",
    )


def test_a_service_not_running_is_exit_3_saying_where_the_cli_looked(tmp_path: Path) -> None:
    (tmp_path / "job.json").write_text("{}")
    url = f"http://127.0.0.1:{free_port()}"
    for args in (["submit", "job.json", "--url", url], ["jobs", "--url", url]):
        done = subprocess.run(
            [sys.executable, "-m", "app.cli", *args],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )
        assert (done.returncode, done.stdout, done.stderr) == (
            3,
            "",
            (
                f"imgserve: cannot reach imgserve at {url}: connection refused; is it running "
                "(`imgserve up`), and is IMGSERVE_URL where it listens?\n"
            ),
        )


def test_a_busy_port_is_one_sentence_and_exit_2_before_any_banner(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    env = service_env(root, IMGSERVE_STATE_DIR=str(tmp_path / "state"))
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = str(taken.getsockname()[1])
        for command in (
            ["up", "--host", "127.0.0.1", "--port", port],
            ["api", "--host", "127.0.0.1"],
        ):
            done = subprocess.run(
                [sys.executable, "-m", "app.cli", *command],
                env={**env, "IMGSERVE_PORT": port},
                cwd=root,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert (done.returncode, done.stdout, done.stderr) == (
                2,
                "",
                (
                    f"imgserve: port {port} is already in use on 127.0.0.1 (another imgserve, or "
                    "another program); choose another with --port or IMGSERVE_PORT\n"
                ),
            ), command


def test_up_on_another_port_prints_a_sample_command_that_works_as_printed(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "checkout"
    shutil.copytree(REPO / "examples", folder / "examples", ignore=shutil.ignore_patterns("output"))
    port = free_port()
    env = service_env(folder, IMGSERVE_PORT=str(port))
    del env["IMGSERVE_ROOT"]
    service = Service(f"http://127.0.0.1:{port}", folder, env)
    service.spawn("up", "--concurrency", "2", name="up")
    try:
        service.wait_healthy()
        lines = (tmp_path / "up.log").read_text().splitlines()
        banner = lines[lines.index("imgserve is up on embedded (no server), 2 worker processes") :]
        command = "imgserve submit examples/job.json --wait"
        assert banner[:6] == [
            "imgserve is up on embedded (no server), 2 worker processes",
            f"  API:         http://127.0.0.1:{port}/jobs",  # loopback only, by default
            f"  docs:        http://127.0.0.1:{port}/docs",
            f"  storage:     {folder}",
            f"  sample job:  IMGSERVE_URL=http://127.0.0.1:{port} {command}",
            "Stop with Ctrl-C.",
        ]
        shell = {**env, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"}
        done = subprocess.run(
            banner[4].split(":  ", 1)[1],
            shell=True,
            cwd=folder,
            env=shell,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert (done.returncode, done.stderr) == (0, ""), done.stdout
        assert done.stdout.splitlines()[1:] == [
            "succeeded: 4 of 4 images done, 0 failed",
            "wrote 16 outputs to examples/output/",
        ]
    finally:
        service.stop()


def test_version_is_the_installed_package_s() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "--version"], capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stdout) == (0, f"imgserve {version('imgserve')}\n")


def test_a_bad_setting_of_a_serving_command_is_one_sentence_and_exit_2(tmp_path: Path) -> None:
    env = service_env(tmp_path, IMGSERVE_STATE_DIR=str(tmp_path / "state"))
    limits = "imgserve: IMGSERVE_SOFT_TIME_LIMIT (400 s) must be below IMGSERVE_HARD_TIME_LIMIT (330 s)\n"
    # fmt: off
    cases = [
        ("api", {"IMGSERVE_LOG_FORMAT": "xml"}, "imgserve: IMGSERVE_LOG_FORMAT is 'xml'; use text or json\n"),
        ("worker", {"IMGSERVE_LOG_FORMAT": "xml"}, "imgserve: IMGSERVE_LOG_FORMAT is 'xml'; use text or json\n"),
        ("api", {"IMGSERVE_PORT": "http"}, "imgserve: argument --port: 'http' is not a port number (1 to 65535); see `imgserve api --help`\n"),
        ("up", {"IMGSERVE_PORT": "0"}, "imgserve: argument --port: '0' is not a port number (1 to 65535); see `imgserve up --help`\n"),
        ("api", {"IMGSERVE_SOFT_TIME_LIMIT": "400"}, limits),
        ("worker", {"IMGSERVE_SOFT_TIME_LIMIT": "400"}, limits),
    ]
    # fmt: on
    for command, extra, stderr in cases:
        done = subprocess.run(
            [sys.executable, "-m", "app.cli", command],
            env={**env, **extra},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert (done.returncode, done.stdout, done.stderr) == (2, "", stderr), (command, extra)


def test_a_service_whose_redis_is_down_is_exit_3_with_the_api_s_sentence(
    private_redis: StartRedis, redis_stacks: StartService
) -> None:
    server = private_redis()
    service = redis_stacks(server.url, workers=0)
    server.stop()
    done = imgserve(service, "jobs")
    assert (done.returncode, done.stdout) == (3, "")
    assert done.stderr.startswith(
        "imgserve: 503 Service unavailable: the job store does not answer: "
    )
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr


class NotImgserve(http.server.BaseHTTPRequestHandler):
    """A web server that is not imgserve: `{}` on /jobs..., an HTML 404 elsewhere."""

    def do_GET(self) -> None:
        """Answer as some other service would."""
        if self.path.startswith("/jobs"):
            body, status, kind = b"{}", 200, "application/json"
        else:
            body, status, kind = (
                b"<html><h1>Not Found</h1>\n<p>nothing</p></html>",
                404,
                "text/html",
            )
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        """Keep quiet."""


def test_a_url_that_is_not_imgserve_is_exit_2_saying_so(tmp_path: Path) -> None:
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotImgserve) as other:
        threading.Thread(target=other.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{other.server_address[1]}"
        cases = [
            (url, f"imgserve: {url} did not answer as the imgserve API does: is that where it listens?\n"),
            (f"{url}/elsewhere", "imgserve: 404 Not Found: <html><h1>Not Found</h1> <p>nothing</p></html>\n"),
        ]  # fmt: skip
        for where, stderr in cases:
            done = subprocess.run(
                [sys.executable, "-m", "app.cli", "status", "abc", "--url", where],
                capture_output=True, text=True, timeout=60, cwd=tmp_path,
            )  # fmt: skip
            assert (done.returncode, done.stdout, done.stderr) == (2, "", stderr)
        other.shutdown()
