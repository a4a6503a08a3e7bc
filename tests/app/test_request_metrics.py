"""The API's own metrics on /metrics: requests by route template and status, durations, in
flight, the process; one Content-Type; the queue depth."""

from __future__ import annotations

from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from app.backends import Backends

PHOTO = "photos/cyclo1.jpg"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(client: FlaskClient, **headers: str) -> Samples:
    """Return every sample /metrics answers, by name and sorted labels."""
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.get_data(as_text=True))
        for s in family.samples
    }


def requests_counted(samples: Samples) -> dict[tuple[str, str, str], float]:
    """Return http_requests_total by (method, route, status)."""
    return {
        (labels["method"], labels["route"], labels["status"]): value
        for (name, pairs), value in samples.items()
        if name == "http_requests_total"
        for labels in [dict(pairs)]
    }


def test_requests_are_counted_by_method_route_template_and_status(client: FlaskClient) -> None:
    job = client.post(
        "/jobs", json={"images": [{"input": PHOTO, "output": "o.jpg"}], "operations": ["blur=3"]}
    ).get_json()
    client.get(f"/jobs/{job['id']}")
    client.get(f"/jobs/{job['id']}")
    client.get("/jobs/nope")
    client.delete(f"/jobs/{job['id']}")
    client.post("/jobs", json={"images": [], "operations": []})
    client.post("/jobs", data="x", content_type="text/plain")
    client.get("/jobs?limit=0")
    client.get("/nowhere/at/all")
    client.put("/jobs")
    client.open("/jobs", method="BREW")
    assert client.get("/healthz").status_code == 200
    samples = scrape(client)
    assert requests_counted(samples) == {
        ("POST", "/jobs", "202"): 1,
        ("GET", "/jobs/<job_id>", "200"): 2,
        ("GET", "/jobs/<job_id>", "404"): 1,
        ("DELETE", "/jobs/<job_id>", "200"): 1,
        ("POST", "/jobs", "422"): 1,
        ("POST", "/jobs", "415"): 1,
        ("GET", "/jobs", "422"): 1,
        ("GET", "unmatched", "404"): 1,
        ("PUT", "unmatched", "405"): 1,
        ("other", "unmatched", "405"): 1,
        ("GET", "/healthz", "200"): 1,
    }
    durations = (("method", "GET"), ("route", "/jobs/<job_id>"))
    assert samples[("http_request_duration_seconds_count", durations)] == 3
    assert samples[("http_request_duration_seconds_bucket", (("le", "+Inf"), *durations))] == 3
    assert samples[("http_requests_in_flight", ())] == 1  # the scrape itself
    assert requests_counted(scrape(client))[("GET", "/metrics", "200")] == 1


def test_metrics_have_the_process_s_own_and_one_content_type(client: FlaskClient) -> None:
    response = client.get("/metrics")
    assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    samples = scrape(client)
    assert samples[("process_resident_memory_bytes", ())] > 10_000_000
    assert samples[("process_cpu_seconds_total", ())] > 0
    assert [labels for name, labels in samples if name == "python_info"] != []
    assert any(name == "python_gc_collections_total" for name, _ in samples)


def test_an_openmetrics_scraper_gets_openmetrics(client: FlaskClient) -> None:
    response = client.get("/metrics", headers={"Accept": "application/openmetrics-text"})
    assert response.headers["Content-Type"] == (
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    )
    assert response.get_data(as_text=True).endswith("# EOF\n")


def test_the_queue_depth_is_read_at_every_scrape(client: FlaskClient, backends: Backends) -> None:
    assert scrape(client)[("imgserve_queue_depth", ())] == 0
    client.post(
        "/jobs", json={"images": [{"input": PHOTO, "output": "o.jpg"}], "operations": ["blur=3"]}
    )
    assert scrape(client)[("imgserve_queue_depth", ())] == 1


def test_each_app_counts_its_own_requests(client: FlaskClient, backends: Backends) -> None:
    from app import create_app

    client.get("/healthz")
    other = create_app({"TESTING": True, "SETTINGS": backends.settings, "BACKENDS": backends})
    assert requests_counted(scrape(other.test_client())) == {}
