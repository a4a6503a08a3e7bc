"""One access-log line per request, without secrets; and the log formats of the services."""

from __future__ import annotations

import json
import logging
import sys

import pytest
from flask.testing import FlaskClient

from app.logging_setup import (
    TEXT_FORMAT,
    JsonFormatter,
    LogSettingError,
    configure_logging,
    log_format,
)

PHOTO = "photos/cyclo1.jpg"


def access_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """Return the access log's records."""
    return [record for record in caplog.records if record.name == "imgserve.access"]


def fields(record: logging.LogRecord) -> dict[str, object]:
    """Return the access-log fields of a record, its duration left out."""
    keys = ("method", "path", "status", "job_id")
    return {key: getattr(record, key) for key in keys if hasattr(record, key)}


def test_each_request_is_one_line_with_method_path_status_duration_and_job(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="imgserve.access")
    job = client.post(
        "/jobs", json={"images": [{"input": PHOTO, "output": "o.jpg"}], "operations": ["blur=3"]}
    ).get_json()
    client.get(f"/jobs/{job['id']}?wait=0")
    client.get("/jobs/nope")
    client.get("/healthz")
    records = access_lines(caplog)
    assert [fields(record) for record in records] == [
        {"method": "POST", "path": "/jobs", "status": 202, "job_id": job["id"]},
        {"method": "GET", "path": f"/jobs/{job['id']}", "status": 200, "job_id": job["id"]},
        {"method": "GET", "path": "/jobs/nope", "status": 404, "job_id": "nope"},
        {"method": "GET", "path": "/healthz", "status": 200},
    ]
    for record in records:
        assert record.levelname == "INFO"
        ms = record.duration_ms  # type: ignore[attr-defined]
        assert isinstance(ms, float) and 0 <= ms < 10_000
        job_part = f" job {record.job_id}" if hasattr(record, "job_id") else ""
        assert record.getMessage() == (
            f"{record.method} {record.path} {record.status} {ms:.1f} ms{job_part}"  # type: ignore[attr-defined]
        )


def test_no_query_string_header_or_forged_line_reaches_the_log(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="imgserve.access")
    client.get(
        "/jobs/abc%0A2026-01-01 INFO forged?token=s3cret",
        headers={"Authorization": "Bearer t0ken", "Cookie": "session=c00kie"},
    )
    (record,) = access_lines(caplog)
    assert fields(record) == {
        "method": "GET",
        "path": "/jobs/abc%0A2026-01-01%20INFO%20forged",
        "status": 404,
        "job_id": "abc%0A2026-01-01%20INFO%20forged",
    }
    assert "\n" not in record.getMessage()
    assert all(secret not in caplog.text for secret in ("s3cret", "t0ken", "c00kie"))


def test_the_json_format_is_one_object_a_line_with_the_fields_as_members() -> None:
    record = logging.makeLogRecord(
        {"name": "imgserve.access", "levelno": logging.INFO, "levelname": "INFO",
         "msg": "GET %s 200", "args": ("/jobs",), "created": 1796232227.8713,
         "processName": "MainProcess", "method": "GET", "status": 200}
    )  # fmt: skip
    assert json.loads(JsonFormatter().format(record)) == {
        "time": "2026-12-02T17:23:47.871+00:00",
        "level": "INFO",
        "logger": "imgserve.access",
        "process": "MainProcess",
        "message": "GET /jobs 200",
        "method": "GET",
        "status": 200,
    }


def test_the_json_format_carries_an_exception_in_one_line() -> None:
    try:
        raise ValueError("bad")
    except ValueError:
        record = logging.makeLogRecord({"msg": "failed", "exc_info": sys.exc_info()})
    line = JsonFormatter().format(record)
    assert "\n" not in line
    assert json.loads(line)["exception"].endswith("ValueError: bad")


@pytest.mark.parametrize(
    ("value", "chosen"), [(None, "text"), ("", "text"), ("json", "json"), (" JSON ", "json")]
)
def test_the_log_format_comes_from_imgserve_log_format(
    monkeypatch: pytest.MonkeyPatch, value: str | None, chosen: str
) -> None:
    if value is None:
        monkeypatch.delenv("IMGSERVE_LOG_FORMAT", raising=False)
    else:
        monkeypatch.setenv("IMGSERVE_LOG_FORMAT", value)
    assert log_format() == chosen


def test_an_unknown_log_format_is_refused_naming_both(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMGSERVE_LOG_FORMAT", "xml")
    with pytest.raises(LogSettingError) as raised:
        log_format()
    assert str(raised.value) == "IMGSERVE_LOG_FORMAT is 'xml'; use text or json"


def test_the_text_format_names_time_level_process_and_logger() -> None:
    record = logging.makeLogRecord(
        {"name": "imgserve.access", "levelname": "INFO", "msg": "GET /jobs 200 1.2 ms",
         "processName": "MainProcess"}
    )  # fmt: skip
    text = logging.Formatter(TEXT_FORMAT).format(record)
    assert text.partition(" INFO ")[2] == "[MainProcess] imgserve.access: GET /jobs 200 1.2 ms"


def test_kombu_s_warning_of_no_host_for_the_embedded_queue_is_dropped(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("IMGSERVE_LOG_FORMAT", raising=False)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        configure_logging()
        kombu = logging.getLogger("kombu.connection")
        kombu.warning("No hostname was supplied. Reverting to default %r", "localhost")
        kombu.warning("Connection to broker lost")
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        logging.captureWarnings(False)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert lines[0].endswith(" WARNING [MainProcess] kombu.connection: Connection to broker lost")
