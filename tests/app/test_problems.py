"""Every bad request gets a problem+json that names what is wrong, and nothing is enqueued."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from app.backends import Backends
from app.errors import without_addresses
from tests.support import RecordingQueue
from worker.jobs import Job
from worker.store import StoreTimedOut

PHOTO = "photos/cyclo1.jpg"


def problem(response) -> dict:  # type: ignore[no-untyped-def, type-arg]
    """Return a problem document, checking its media type and members."""
    assert response.mimetype == "application/problem+json", response.data
    body = response.get_json()
    assert {"type", "title", "status", "detail"} <= body.keys()
    assert body["status"] == response.status_code
    return body  # type: ignore[no-any-return]


def errors(client: FlaskClient, job: object) -> list[dict[str, str]]:
    """Submit a job that must be refused with 422 and leave no job behind; return its errors."""
    store = client.application.extensions["imgserve"].store
    before = store.list_jobs(limit=100, offset=0)
    response = client.post("/jobs", json=job)
    assert response.status_code == 422, response.get_json()
    assert store.list_jobs(limit=100, offset=0) == before
    body = problem(response)
    assert body["type"] == "urn:imgserve:problem:invalid-job"
    return body["errors"]  # type: ignore[no-any-return]


def test_a_refused_job_writes_nothing(client: FlaskClient, root: Path) -> None:
    before = sorted(root.rglob("*"))
    errors(client, {"images": [{"input": PHOTO, "output": "new/o.jpg"}], "operations": ["blur=2"]})
    assert sorted(root.rglob("*")) == before


def test_every_bad_operation_is_named_with_its_pointer(client: FlaskClient) -> None:
    found = errors(
        client,
        {
            "images": [{"input": PHOTO, "output": "o.jpg"}],
            "operations": ["resize=2", "resize=-0.5", "blur=25", "sharpenize=3"],
        },
    )
    assert [e["pointer"] for e in found] == ["/operations/1", "/operations/3"]
    assert found[0]["detail"] == "resize factor -0.5 is not in the range 0.05 <= factor <= 100"


def test_structure_problems_and_operation_problems_come_together(client: FlaskClient) -> None:
    found = errors(
        client,
        {"images": [{"input": PHOTO}], "operations": ["blur=24"], "colour": "red"},
    )
    assert {e["pointer"] for e in found} == {"/images/0/output", "/operations/0", "/colour"}
    by_pointer = {e["pointer"]: e["detail"] for e in found}
    assert by_pointer["/images/0/output"] == "'output' is required"
    assert by_pointer["/colour"] == "unknown field 'colour'"


@pytest.mark.parametrize(
    ("job", "pointer", "detail"),
    [
        ([], "", "the body must be a JSON object with images and operations"),
        ({"operations": ["resize=2"]}, "/images", "'images' is required"),
        ({"images": [], "operations": []}, "/images", "List should have at least 1 item after validation, not 0"),
        ({"images": "a.jpg", "operations": []}, "/images", "Input should be a valid list"),
        ({"images": [{"input": 3, "output": "o.jpg"}], "operations": []}, "/images/0/input", "Input should be a valid string"),
        ({"images": [{"input": PHOTO, "output": "o.jpg", "x": 1}], "operations": []}, "/images/0/x", "unknown field 'x'"),
    ],
)  # fmt: skip
def test_structure_problems_have_pointers(
    client: FlaskClient, job: object, pointer: str, detail: str
) -> None:
    assert {"pointer": pointer, "detail": detail} in errors(client, job)


def test_a_missing_input_and_one_outside_the_root_read_the_same(
    client: FlaskClient, root: Path
) -> None:
    outside = root.parent / "secret.jpg"
    outside.write_bytes((root / PHOTO).read_bytes())
    found = errors(
        client,
        {
            "images": [
                {"input": "photos/missing.jpg", "output": "a.jpg"},
                {"input": "../secret.jpg", "output": "b.jpg"},
                {"input": str(outside), "output": "c.jpg"},
                {"input": "photos", "output": "d.jpg"},
            ],
            "operations": ["resize=0.5"],
        },
    )
    assert found == [
        {"pointer": "/images/0/input", "detail": "input 'photos/missing.jpg' is not a file in the storage root"},
        {"pointer": "/images/1/input", "detail": "input '../secret.jpg' is not a file in the storage root"},
        {"pointer": "/images/2/input", "detail": f"input {str(outside)!r} is not a file in the storage root"},
        {"pointer": "/images/3/input", "detail": "input 'photos' is not a file in the storage root"},
    ]  # fmt: skip


def test_absolute_paths_inside_the_root_are_accepted(client: FlaskClient, root: Path) -> None:
    response = client.post(
        "/jobs",
        json={
            "images": [{"input": str(root / PHOTO), "output": str(root / "out.jpg")}],
            "operations": ["resize=0.5"],
        },
    )
    assert response.status_code == 202


def test_outputs_must_have_a_known_format_and_stay_inside(client: FlaskClient) -> None:
    found = errors(
        client,
        {
            "images": [
                {"input": PHOTO, "output": "a.gif"},
                {"input": PHOTO, "output": "../escape.jpg"},
                {"input": PHOTO, "output": "photos"},
            ],
            "operations": ["resize=0.5"],
        },
    )
    assert [e["pointer"] for e in found] == [
        "/images/0/output",
        "/images/1/output",
        "/images/2/output",
    ]
    assert found[1]["detail"] == "output '../escape.jpg' is outside the storage root"
    assert "'.gif' is not a supported output format" in found[0]["detail"]


def test_outputs_that_collide_or_overwrite_an_input_are_refused(client: FlaskClient) -> None:
    found = errors(
        client,
        {
            "images": [
                {"input": PHOTO, "output": "photos/cyclo1.jpg"},
                {"input": "photos/cyclo2.jpg", "output": "out/x.jpg"},
                {"input": "photos/cyclo3.jpg", "output": "./out/x.jpg"},
                {"input": "photos/cyclo4.jpg", "output": "photos/cyclo2.jpg"},
            ],
            "operations": [],
        },
    )
    assert found == [
        {
            "pointer": "/images/0/output",
            "detail": "output would overwrite the input at /images/0/input",
        },
        {
            "pointer": "/images/2/output",
            "detail": "output 'x.jpg' is also written by /images/1/output",
        },
        {
            "pointer": "/images/3/output",
            "detail": "output would overwrite the input at /images/1/input",
        },
    ]


def test_split_outputs_that_collide_are_refused(client: FlaskClient) -> None:
    found = errors(
        client,
        {
            "images": [
                {"input": "photos/cyclo2.jpg", "output": "out/x.jpg"},
                {"input": "photos/cyclo3.jpg", "output": "out/x.jpg"},
            ],
            "operations": ["splitQuadrants=True"],
        },
    )
    assert found == [
        {
            "pointer": "/images/1/output",
            "detail": f"output 'x_{n}.jpg' is also written by /images/0/output",
        }
        for n in range(1, 5)
    ]


def test_a_chain_that_would_exceed_the_pixel_limit_is_refused_at_submission(
    client: FlaskClient,
) -> None:
    found = errors(
        client, {"images": [{"input": PHOTO, "output": "big.jpg"}], "operations": ["resize=100"]}
    )
    assert [e["pointer"] for e in found] == ["/operations/0"]
    assert found[0]["detail"].endswith("(for input 'photos/cyclo1.jpg', 1024x754)")


def test_an_input_that_is_not_an_image_is_refused(client: FlaskClient, root: Path) -> None:
    (root / "notes.jpg").write_text("not a photo")
    found = errors(
        client, {"images": [{"input": "notes.jpg", "output": "o.jpg"}], "operations": ["blur=3"]}
    )
    assert [e["pointer"] for e in found] == ["/images/0/input"]
    assert found[0]["detail"].startswith("input 'notes.jpg': ")


def test_too_many_images_are_refused(client: FlaskClient) -> None:
    images = [{"input": PHOTO, "output": f"{n}.jpg"} for n in range(11)]
    assert errors(client, {"images": images, "operations": []}) == [
        {"pointer": "/images", "detail": "a job may have at most 10 images; this one has 11"}
    ]


def test_control_characters_in_paths_are_refused(client: FlaskClient) -> None:
    found = errors(
        client, {"images": [{"input": "photos/a\u0000.jpg", "output": "o\n.jpg"}], "operations": []}
    )
    assert found == [
        {"pointer": "/images/0/input", "detail": "input 'photos/a\\x00.jpg' contains a control character"},
        {"pointer": "/images/0/output", "detail": "output 'o\\n.jpg' contains a control character"},
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b'{"images": [', "the body is not valid JSON: Expecting value: line 1 column 13 (char 12)"),
        (b'{"images": NaN}', "the body is not valid JSON: NaN is not a JSON value"),
        (b'{"a": 1e999}', "the body is not valid JSON: the number 1e999 is too large"),
        (b"[" * 100_000 + b"]" * 100_000, "the body is not valid JSON: it is nested too deeply"),
        (b'{"a": "\xff"}', "the body is not valid JSON: 'utf-8' codec can't decode byte 0xff in position 7: invalid start byte"),
    ],
)  # fmt: skip
def test_malformed_json_is_a_400(client: FlaskClient, body: bytes, detail: str) -> None:
    response = client.post("/jobs", data=body, content_type="application/json")
    assert response.status_code == 400
    assert problem(response)["detail"] == detail


def test_a_body_that_is_not_json_is_a_415(client: FlaskClient) -> None:
    response = client.post("/jobs", data="images=a.jpg", content_type="text/plain")
    assert response.status_code == 415
    assert problem(response)["detail"] == "send the job as application/json, not text/plain"


def test_a_body_over_the_limit_is_a_413(client: FlaskClient) -> None:
    response = client.post("/jobs", data=b" " * (1024 * 1024 + 1), content_type="application/json")
    assert response.status_code == 413
    assert problem(response)["title"] == "Request Entity Too Large"
    assert problem(response)["detail"] == BODY_TOO_LARGE


def test_an_unknown_method_is_a_405_with_allow(client: FlaskClient) -> None:
    response = client.put("/jobs")
    assert response.status_code == 405
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS", "POST"}
    assert problem(response)["title"] == "Method Not Allowed"


def test_an_unknown_route_is_a_404_problem(client: FlaskClient) -> None:
    assert problem(client.get("/nothing-here"))["status"] == 404


def test_a_store_that_does_not_answer_is_a_503_not_a_500(
    client: FlaskClient, backends: Backends
) -> None:
    from worker.store.redis_store import RedisJobStore

    backends.queue.store = RedisJobStore.from_url("redis://127.0.0.1:1/0", ttl=60)
    response = client.post(
        "/jobs", json={"images": [{"input": PHOTO, "output": "o.jpg"}], "operations": []}
    )
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert problem(response)["detail"].startswith(
        "the job store does not answer, nothing was stored"
    )


def test_a_503_does_not_show_where_the_store_is(client: FlaskClient, backends: Backends) -> None:
    from worker.store.redis_store import RedisJobStore

    backends.queue.store = RedisJobStore.from_url("redis://127.0.0.1:1/0", ttl=60)
    response = client.post(
        "/jobs", json={"images": [{"input": PHOTO, "output": "o.jpg"}], "operations": []}
    )
    assert problem(response)["detail"] == (
        "the job store does not answer, nothing was stored or enqueued: "
        "Redis does not answer: Error 111 connecting to the server. Connection refused."
    )
    assert client.get("/jobs/abc").get_json()["detail"] == (
        "the job store does not answer: "
        "Redis does not answer: Error 111 connecting to the server. Connection refused."
    )


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("Error 111 connecting to 127.0.0.1:6380. Connection refused.",
         "Error 111 connecting to the server. Connection refused."),
        ("Error 111 connecting to ::1:6379.", "Error 111 connecting to the server."),
        ("Error 111 connecting to [::1]:6379.", "Error 111 connecting to the server."),
        ("Error -2 connecting to redis.internal:6379.", "Error -2 connecting to the server."),
        ("cannot reach redis://:secret@db:6379/0 now", "cannot reach the server now"),
        ("Redis did not answer in time: Timeout reading from socket",
         "Redis did not answer in time: Timeout reading from socket"),
        ("job 0a1b may exist (GET /jobs/0a1b tells)", "job 0a1b may exist (GET /jobs/0a1b tells)"),
    ],
)  # fmt: skip
def test_addresses_are_left_out_of_503s(text: str, shown: str) -> None:
    assert without_addresses(text) == shown


def test_a_store_that_times_out_withdraws_the_job_it_may_have_stored(
    client: FlaskClient, queue: RecordingQueue, backends: Backends, monkeypatch: pytest.MonkeyPatch
) -> None:
    create = backends.store.create

    def slow(job: Job, *, window: int) -> list[int]:
        create(job, window=window)  # stored; the answer came too late
        raise StoreTimedOut("Redis did not answer in time: Timeout reading from socket")

    monkeypatch.setattr(backends.store, "create", slow)
    response = client.post(
        "/jobs", json={"images": [{"input": PHOTO, "output": "o.jpg"}], "operations": []}
    )
    assert response.status_code == 503
    [job] = backends.store.list_jobs(limit=10, offset=0)
    assert problem(response)["detail"] == (
        f"the job store did not answer in time; job {job.id} was withdrawn if it was stored, "
        "and none of it runs: Redis did not answer in time: Timeout reading from socket"
    )
    assert job.state == "cancelled" and queue.sent == []


def test_a_queue_that_does_not_answer_withdraws_the_job(
    client: FlaskClient, queue: RecordingQueue, backends: Backends
) -> None:
    queue.fail = True
    response = client.post(
        "/jobs", json={"images": [{"input": PHOTO, "output": "o.jpg"}], "operations": []}
    )
    assert response.status_code == 503
    assert (
        problem(response)["detail"]
        == "the queue does not answer, the job was withdrawn: broker down"
    )
    [job] = backends.store.list_jobs(limit=10, offset=0)
    assert job.state == "cancelled"


def test_a_symlink_leading_out_of_the_root_is_refused(client: FlaskClient, root: Path) -> None:
    outside = root.parent / "outside"
    outside.mkdir()
    (outside / "p.jpg").write_bytes((root / PHOTO).read_bytes())
    os.symlink(outside, root / "link")
    found = errors(
        client, {"images": [{"input": "link/p.jpg", "output": "link/o.jpg"}], "operations": []}
    )
    assert found == [
        {"pointer": "/images/0/input", "detail": "input 'link/p.jpg' is not a file in the storage root"},
        {"pointer": "/images/0/output", "detail": "output 'link/o.jpg' is outside the storage root"},
    ]  # fmt: skip


def test_image_problems_are_named_even_when_the_operations_are_wrong(client: FlaskClient) -> None:
    assert errors(
        client, {"images": [{"input": "nope.jpg", "output": "o.gif"}], "operations": ["blur=4"]}
    ) == [
        {
            "pointer": "/operations/0",
            "detail": "blur kernel 4 must be odd (or 0 to derive it from sigma)",
        },
        {
            "pointer": "/images/0/input",
            "detail": "input 'nope.jpg' is not a file in the storage root",
        },
        {
            "pointer": "/images/0/output",
            "detail": "cannot write o.gif: '.gif' is not a supported output format; use one of .avif, .bmp, .jpeg, .jpg, .png, .tif, .tiff, .webp",
        },
    ]


ROUTES = {
    "/jobs": "GET, HEAD, OPTIONS, POST",
    "/jobs/3f2a": "DELETE, GET, HEAD, OPTIONS",
    "/healthz": "GET, HEAD, OPTIONS",
    "/metrics": "GET, HEAD, OPTIONS",
    "/openapi.json": "GET, HEAD, OPTIONS",
    "/docs": "GET, HEAD, OPTIONS",
}


@pytest.mark.parametrize("path", ROUTES)
def test_an_unknown_method_on_every_route_is_a_405_with_the_exact_allow(
    client: FlaskClient, path: str
) -> None:
    allowed = ROUTES[path]
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "TRACE", "QUERY", "BREW"):
        if method in allowed.split(", "):
            continue
        response = client.open(path, method=method, json={"images": []})
        assert response.status_code == 405, method
        assert response.headers["Allow"] == allowed
        assert problem(response) == {
            "type": "about:blank",
            "title": "Method Not Allowed",
            "status": 405,
            "detail": "The method is not allowed for the requested URL.",
            "instance": path,
        }
    assert set(client.options(path).headers["Allow"].split(", ")) == set(allowed.split(", "))


def nested(depth: int) -> str:
    """Return a JSON array nested depth levels deep."""
    return "[" * depth + "]" * depth


JOB = '{"images": [{"input": "photos/cyclo1.jpg", "output": "o.jpg"}], "operations": %s}'
TOO_DEEP = "the body is not valid JSON: it is nested too deeply"


@pytest.mark.parametrize(
    "body",
    [
        JOB % nested(5000),  # operations: [[[[...]]]]
        JOB % f'[{{"op": "resize", "factor": {nested(5000)}}}]',
        JOB % ('["resize=0.5"], "encode": ' + '{"a": ' * 5000 + "1" + "}" * 5000),
        JOB % nested(32),  # 33 levels with the body's own object: one more than allowed
        JOB.replace('"o.jpg"', nested(31)) % "[]",
    ],
    ids=["operations", "an operation's parameter", "encode", "one level too deep", "an output"],
)
def test_deep_nesting_anywhere_is_a_400_never_a_500(client: FlaskClient, body: str) -> None:
    response = client.post("/jobs", data=body, content_type="application/json")
    assert response.status_code == 400
    assert problem(response)["detail"] == TOO_DEEP


def test_nesting_up_to_the_limit_is_read_and_refused_as_a_wrong_job(client: FlaskClient) -> None:
    response = client.post("/jobs", data=JOB % nested(31), content_type="application/json")
    assert response.status_code == 422
    assert problem(response)["errors"] == [
        {
            "pointer": "/operations/0",
            "detail": 'an operation must be a string such as "resize=2" or an object such as {"op": "resize", "factor": 2}, not an array',
        }
    ]


@pytest.mark.parametrize(
    ("number", "detail"),
    [
        ("1" + "0" * 400, "the number 10000000000000000000... (401 characters) is too large"),
        ("-" + "9" * 5000, "the number -9999999999999999999... (5001 characters) is too large"),
        ("2" + "0" * 308, "the number 20000000000000000000... (309 characters) is too large"),
        ("1e999", "the number 1e999 is too large"),
    ],
    ids=["400 digits", "5000 digits", "just above the largest float", "a float"],
)
def test_a_number_too_large_for_a_float_is_a_400_whether_integer_or_not(
    client: FlaskClient, number: str, detail: str
) -> None:
    body = JOB % f'[{{"op": "resize", "factor": {number}}}]'
    response = client.post("/jobs", data=body, content_type="application/json")
    assert response.status_code == 400
    assert problem(response)["detail"] == f"the body is not valid JSON: {detail}"


def test_an_integer_a_float_can_hold_is_read_and_checked_against_its_range(
    client: FlaskClient,
) -> None:
    body = JOB % f'[{{"op": "rotate", "degrees": {"1" + "0" * 308}}}]'
    response = client.post("/jobs", data=body, content_type="application/json")
    assert response.status_code == 422
    assert problem(response)["errors"] == [
        {
            "pointer": "/operations/0/degrees",
            "detail": "rotate degrees a huge integer is not one of 90, 180, 270",
        }
    ]


@pytest.mark.parametrize(
    ("body", "pointer", "detail"),
    [
        (JOB.replace("photos/cyclo1.jpg", "photos/\\ud800.jpg") % "[]", "/images/0/input",
         "the string at /images/0/input has a lone surrogate (\\ud800), which is not a character"),
        (JOB % '["resize=\\udfff"]', "/operations/0",
         "the string at /operations/0 has a lone surrogate (\\udfff), which is not a character"),
        (JOB % '[{"op": "blur", "\\udc80": 1}]', "/operations/0",
         "a member name of the object at /operations/0 has a lone surrogate (\\udc80), which is not a character"),
        ('{"\\ud800": 1}', "",
         "a member name of the object at the top level has a lone surrogate (\\ud800), which is not a character"),
        ('"\\ud83d"', "",
         "the string at the top level has a lone surrogate (\\ud83d), which is not a character"),
    ],
    ids=["input", "operation", "parameter name", "field name", "the body"],
)  # fmt: skip
def test_a_lone_surrogate_is_a_400_with_its_pointer(
    client: FlaskClient, body: str, pointer: str, detail: str
) -> None:
    response = client.post("/jobs", data=body, content_type="application/json")
    assert response.status_code == 400
    found = problem(response)
    assert found["detail"] == f"the body is not valid JSON: {detail}"
    assert found["errors"] == [{"pointer": pointer, "detail": detail}]


def test_a_surrogate_pair_is_one_character_and_is_accepted(client: FlaskClient) -> None:
    body = JOB.replace('"o.jpg"', '"out/\\ud83d\\ude00.jpg"') % '["resize=0.5"]'
    response = client.post("/jobs", data=body, content_type="application/json")
    assert response.status_code == 202
    assert response.get_json()["images"][0]["output"] == "out/\U0001f600.jpg"


@pytest.mark.parametrize(
    ("query", "parameter", "detail"),
    [
        ("/jobs?limit=5&limit=500", "limit", "limit is given 2 times; give it once"),
        ("/jobs?offset=0&offset=0", "offset", "offset is given 2 times; give it once"),
        ("/jobs?limit=5&offset=1&limit=5&limit=", "limit", "limit is given 3 times; give it once"),
        ("/jobs/3f2a?wait=0&wait=30", "wait", "wait is given 2 times; give it once"),
    ],
)
def test_a_repeated_query_parameter_is_a_422_not_a_silent_choice(
    client: FlaskClient, query: str, parameter: str, detail: str
) -> None:
    response = client.get(query)
    assert response.status_code == 422
    found = problem(response)
    assert found["type"] == "urn:imgserve:problem:invalid-query"
    assert found["errors"] == [{"parameter": parameter, "detail": detail}]


@pytest.mark.parametrize(
    ("query", "detail"),
    [
        ("/jobs?limit=1_0", "limit must be a whole number from 1 to 100, not '1_0'"),
        ("/jobs?limit=%D9%A3", "limit must be a whole number from 1 to 100, not '\u0663'"),
        ("/jobs?limit=%205", "limit must be a whole number from 1 to 100, not ' 5'"),
        ("/jobs?limit=%2B5", "limit must be a whole number from 1 to 100, not '+5'"),
        ("/jobs?limit=1e1", "limit must be a whole number from 1 to 100, not '1e1'"),
        ("/jobs?offset=" + "9" * 5000, f"offset must be a whole number from 0 to 1e+06, not '{'9' * 5000}'"),
        ("/jobs/3f2a?wait=1_0", "wait must be a number from 0 to 30, not '1_0'"),
        ("/jobs/3f2a?wait=%EF%BC%95", "wait must be a number from 0 to 30, not '\uff15'"),
        ("/jobs/3f2a?wait=.5", "wait must be a number from 0 to 30, not '.5'"),
        ("/jobs/3f2a?wait=infinity", "wait must be a number from 0 to 30, not 'infinity'"),
        ("/jobs/3f2a?wait=", "wait must be a number from 0 to 30, not ''"),
    ],
)  # fmt: skip
def test_query_numbers_are_written_as_in_json(client: FlaskClient, query: str, detail: str) -> None:
    response = client.get(query)
    assert response.status_code == 422
    assert problem(response)["detail"] == detail


@pytest.mark.parametrize("query", ["limit=7&offset=0", "limit=100&offset=1000000", "offset=-0"])
def test_query_numbers_in_range_are_accepted(client: FlaskClient, query: str) -> None:
    assert client.get(f"/jobs?{query}").status_code == 200


@pytest.mark.parametrize("wait", ["0", "0.001", "1e-3", "0E0"])
def test_waits_written_as_in_json_are_accepted(client: FlaskClient, wait: str) -> None:
    assert client.get(f"/jobs/3f2a?wait={wait}").status_code == 404  # no such job, at once


class CountingBody(io.RawIOBase):
    """A request body that counts the bytes the app reads: start, then spaces up to size."""

    def __init__(self, size: int, start: bytes = b"") -> None:
        self.data = start + b" " * (size - len(start))
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        chunk = self.data[self.read_bytes : self.read_bytes + len(buffer)]
        buffer[: len(chunk)] = chunk
        self.read_bytes += len(chunk)
        return len(chunk)


TEN_MB = 10 * 1024 * 1024
LIMIT = 1024 * 1024  # IMGSERVE_MAX_BODY_BYTES's default, the fixture's too
BODY_TOO_LARGE = "the body is larger than IMGSERVE_MAX_BODY_BYTES (1048576 bytes)"
A_JOB = b'{"images": [{"input": "photos/cyclo1.jpg", "output": "o.jpg"}], "operations": []}'


def post_chunked(client: FlaskClient, body: CountingBody) -> TestResponse:
    """Post a body as a server hands over a chunked one: no length, a stream that ends."""
    return client.post(
        "/jobs",
        headers={"Transfer-Encoding": "chunked"},
        content_type="application/json",
        environ_overrides={"wsgi.input": body, "wsgi.input_terminated": True},
    )


def test_a_10_mb_body_is_a_413_read_not_at_all(client: FlaskClient) -> None:
    body = CountingBody(TEN_MB)
    response = client.post(
        "/jobs",
        content_length=TEN_MB,
        content_type="application/json",
        environ_overrides={"wsgi.input": body},
    )
    assert response.status_code == 413
    assert problem(response)["detail"] == BODY_TOO_LARGE
    assert body.read_bytes == 0


def test_a_10_mb_chunked_body_is_a_413_read_no_further_than_the_limit(
    client: FlaskClient,
) -> None:
    body = CountingBody(TEN_MB, A_JOB)  # its first megabyte alone would be a valid job
    response = post_chunked(client, body)
    assert response.status_code == 413
    assert problem(response)["title"] == "Request Entity Too Large"
    assert body.read_bytes == LIMIT + 1


def test_a_chunked_body_of_exactly_the_limit_is_read(client: FlaskClient) -> None:
    response = post_chunked(client, CountingBody(LIMIT, A_JOB))
    assert response.status_code == 202


def test_an_output_that_a_queued_job_writes_is_refused_naming_that_job(
    client: FlaskClient, queue: RecordingQueue
) -> None:
    first = client.post("/jobs", json={"images": [{"input": PHOTO, "output": "out/a.jpg"}],
                                       "operations": []}).get_json()  # fmt: skip
    found = errors(
        client,
        {
            "images": [
                {"input": PHOTO, "output": "out/b.jpg"},
                {"input": PHOTO, "output": "./out/a.jpg"},
            ],
            "operations": [],
        },
    )
    assert found == [
        {
            "pointer": "/images/1/output",
            "detail": f"output './out/a.jpg' is also written by job {first['id']}, which is "
            "queued or running",
        }
    ]
    assert [job_id for job_id, _ in queue.sent] == [first["id"]]
