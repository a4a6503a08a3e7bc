"""The newcomer's path: `imgserve up`, then `imgserve submit examples/job.json --wait`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import pytest

from tests.support import free_port
from tests.system.service import Service, service_env

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


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


def imgserve(service: Service, *args: str) -> subprocess.CompletedProcess[str]:
    """Run an imgserve command against the service, as a user would in another shell."""
    env = {**service.env, "IMGSERVE_URL": service.url}
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=service.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_sample_job_runs_with_submit_wait(newcomer: Service) -> None:
    done = imgserve(newcomer, "submit", "examples/job.json", "--wait")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("job ") and lines[0].endswith(
        " queued: " + newcomer.url + "/jobs/" + lines[0].split()[1]
    )
    assert "succeeded: 4 of 4 images done, 0 failed" in lines
    job = json.loads((newcomer.root / "examples/job.json").read_text())
    for image in job["images"]:
        source = cv2.imread(str(newcomer.root / image["input"]))
        height, width = source.shape[:2]
        stem, ext = image["output"].rsplit(".", 1)
        for n in range(1, 5):
            output = f"{stem}_{n}.{ext}"
            assert f"  {output}" in lines
            written = cv2.imread(str(newcomer.root / output))
            assert written is not None, output
            quadrant_w = width // 2 if n in (1, 3) else width - width // 2
            quadrant_h = height // 2 if n in (1, 2) else height - height // 2
            assert written.shape[:2] == (2 * quadrant_h, 2 * quadrant_w), output
    assert (newcomer.root / ".imgserve" / "jobs.sqlite3").is_file()
    status = imgserve(newcomer, "status", lines[0].split()[1])
    assert status.returncode == 0 and status.stdout.startswith("succeeded: 4 of 4")


def test_submit_of_a_bad_job_prints_every_problem_and_exits_2(newcomer: Service) -> None:
    bad = newcomer.root / "bad.json"
    bad.write_text(
        json.dumps({"images": [{"input": "nope.jpg", "output": "o.gif"}], "operations": ["blur=4"]})
    )
    done = imgserve(newcomer, "submit", "bad.json", "--wait")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "imgserve: 422 Invalid job: the job has 3 problems: "
        "blur kernel 4 must be odd (or 0 to derive it from sigma) (and more, see errors)",
        "  /operations/0: blur kernel 4 must be odd (or 0 to derive it from sigma)",
        "  /images/0/input: input 'nope.jpg' is not a file in the storage root",
        "  /images/0/output: cannot write o.gif: '.gif' is not a supported output format; "
        "use one of .bmp, .jpeg, .jpg, .png, .tif, .tiff, .webp",
    ]


def test_submit_without_a_server_says_where_it_looked(tmp_path: Path) -> None:
    job = tmp_path / "job.json"
    job.write_text("{}")
    url = f"http://127.0.0.1:{free_port()}"
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "submit", str(job), "--url", url],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert done.returncode == 2
    assert done.stderr.startswith(f"imgserve: cannot reach imgserve at {url}: ")
