"""One writer per output: a job whose output another unfinished job writes is refused, naming it."""

from __future__ import annotations

import cv2
import pytest
import requests

from tests.system.aftermath import assert_all_succeeded_once
from tests.system.service import Service

pytestmark = pytest.mark.slow

CHAIN = ["resize=3", "blur=255"]  # seconds an image: the first job is still busy


def test_a_job_writing_an_output_of_a_queued_or_running_job_is_refused_naming_it(
    service: Service,
) -> None:
    busy = [{"input": f"photos/cyclo{2 + n % 2}.jpg", "output": f"out/{n}.jpg"} for n in range(3)]
    first = service.submit(busy, CHAIN)["id"]
    then = service.wait_until(first, lambda j: j["images"][0]["state"] == "running")
    states = [image["state"] for image in then["images"]]
    # Image 2 waits for one of the 2 worker processes; image 0 is running.
    for output in ("out/2.jpg", "out/0.jpg"):
        late = [{"input": "photos/cyclo4.jpg", "output": output}]
        refused = requests.post(
            f"{service.url}/jobs", json={"images": late, "operations": ["resize=0.5"]}, timeout=10
        )
        assert refused.status_code == 422, (output, states, refused.text)
        assert refused.headers["Content-Type"] == "application/problem+json"
        errors = refused.json()["errors"]
        assert [error["pointer"] for error in errors] == ["/images/0/output"]
        assert first in errors[0]["detail"], errors
    job = service.finish(first)
    assert_all_succeeded_once(service, job, (3072, 3072))
    # Once the first job is over, its outputs may be written again.
    again = service.finish(service.submit(late, ["resize=0.5"])["id"])
    assert again["state"] == "succeeded"
    written = cv2.imread(str(service.root / "out/0.jpg"))
    assert written is not None and written.shape == (256, 256, 3)
