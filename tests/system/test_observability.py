"""What an operator sees of a real `imgserve up`: /metrics after known requests, and the logs.

The service logs with IMGSERVE_LOG_FORMAT=json, so each line of the API's and the worker's
is one JSON object, read back here by its fields.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.system.conftest import StartService
from tests.system.service import Service

pytestmark = pytest.mark.slow

IMAGES = [{"input": "photos/cyclo1.jpg", "output": "out/a.jpg"}]


def scrape(service: Service) -> tuple[dict[tuple[str, str, str], float], dict[str, float], str]:
    """Return the requests counted by (method, route, status), unlabelled samples, Content-Type."""
    response = requests.get(f"{service.url}/metrics", timeout=10)
    assert response.status_code == 200
    counted, plain = {}, {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == "http_requests_total":
                labels = sample.labels
                counted[(labels["method"], labels["route"], labels["status"])] = sample.value
            elif not sample.labels:
                plain[sample.name] = sample.value
    return counted, plain, response.headers["Content-Type"]


def log_entries(service: Service) -> list[dict[str, Any]]:
    """Return every JSON line the service's processes logged."""
    lines = service.logs[0].read_text().splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


def test_metrics_count_known_requests_by_route_and_status_and_the_empty_queue_is_0(
    embedded_ups: StartService, tmp_path: Path
) -> None:
    service = embedded_ups(tmp_path / "state", IMGSERVE_LOG_FORMAT="json")
    job = service.finish(service.submit(IMAGES, ["blur=3"])["id"])
    before, _, _ = scrape(service)
    url = service.url
    assert requests.get(f"{url}/jobs/{job['id']}", timeout=5).status_code == 200
    assert requests.get(f"{url}/jobs/{job['id']}?wait=0", timeout=5).status_code == 200
    assert requests.get(f"{url}/jobs/0123", timeout=5).status_code == 404
    assert requests.delete(f"{url}/jobs/{job['id']}", timeout=5).status_code == 200
    assert requests.get(f"{url}/jobs", timeout=5).status_code == 200
    assert requests.post(f"{url}/jobs", json={"images": []}, timeout=5).status_code == 422
    assert requests.post(f"{url}/jobs", data="x", timeout=5).status_code == 415
    assert requests.get(f"{url}/no/such/page", timeout=5).status_code == 404
    assert requests.put(f"{url}/jobs", timeout=5).status_code == 405
    after, plain, content_type = scrape(service)
    added = {key: after[key] - before.get(key, 0) for key in after if after[key] != before.get(key)}
    assert added == {
        ("GET", "/jobs/<job_id>", "200"): 2,
        ("GET", "/jobs/<job_id>", "404"): 1,
        ("DELETE", "/jobs/<job_id>", "200"): 1,
        ("GET", "/jobs", "200"): 1,
        ("POST", "/jobs", "422"): 1,
        ("POST", "/jobs", "415"): 1,
        ("GET", "unmatched", "404"): 1,
        ("PUT", "unmatched", "405"): 1,
        ("GET", "/metrics", "200"): 1,  # the first scrape
    }
    assert after[("POST", "/jobs", "202")] == 1
    assert plain["imgserve_queue_depth"] == 0
    assert plain["http_requests_in_flight"] == 1  # this scrape
    assert plain["process_resident_memory_bytes"] > 10_000_000
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"


def test_the_access_log_has_a_line_a_request_and_the_worker_logs_json_too(
    embedded_ups: StartService, tmp_path: Path
) -> None:
    service = embedded_ups(tmp_path / "state", IMGSERVE_LOG_FORMAT="json")
    job_id = service.submit(IMAGES, ["blur=3"])["id"]
    service.finish(job_id)
    secret = {"Authorization": "Bearer t0ken-never-logged"}
    requests.get(f"{service.url}/jobs/{job_id}?token=s3cret", headers=secret, timeout=5)
    requests.get(f"{service.url}/jobs/nope", timeout=5)
    entries = log_entries(service)
    access = [e for e in entries if e["logger"] == "imgserve.access"]
    about = [e for e in access if e.get("job_id") in (job_id, "nope")]
    posted, *polls, read, missing = about
    assert {k: posted[k] for k in ("method", "path", "status", "job_id")} == {
        "method": "POST", "path": "/jobs", "status": 202, "job_id": job_id,
    }  # fmt: skip
    assert all(
        (p["method"], p["path"], p["status"]) == ("GET", f"/jobs/{job_id}", 200) for p in polls
    )
    assert read["message"] == f"GET /jobs/{job_id} 200 {read['duration_ms']:.1f} ms job {job_id}"
    assert (missing["path"], missing["status"], missing["level"]) == ("/jobs/nope", 404, "INFO")
    assert isinstance(read["duration_ms"], float) and read["process"] == "MainProcess"
    text = service.logs[0].read_text()
    assert "s3cret" not in text and "t0ken" not in text
    # The worker's pool processes log through the same set-up: JSON, naming the job.
    pool = [e for e in entries if re.fullmatch(r"ForkPoolWorker-\d+", e["process"])]
    assert [e for e in pool if job_id in e["message"]] != []
    assert "-------------- imgserve" not in text  # Celery's banner is no log line
