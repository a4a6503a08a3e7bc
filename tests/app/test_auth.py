"""API keys: a bearer token for every endpoint but /healthz, compared in constant time."""

from __future__ import annotations

import dataclasses
import hmac
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from app import auth, create_app
from app.backends import Backends
from app.client import Client
from worker.settings import Settings, SettingsError

ALICE = "alice-token-0123456789"
BOB = "bob-token-0123456789ab"
KEYS = f"alice:{ALICE},bob:{BOB}"
UNAUTHORIZED = {
    "type": "urn:imgserve:problem:unauthorized",
    "title": "Unauthorized",
    "status": 401,
    "detail": "this request needs an Authorization: Bearer header with a valid API key",
    "instance": "/jobs",
}


def keyed_client(backends: Backends, **changes: Any) -> FlaskClient:
    """Return a test client of an app whose settings have these changes (API keys)."""
    settings = dataclasses.replace(backends.settings, **changes)
    app: Flask = create_app(
        {
            "TESTING": True,
            "SETTINGS": settings,
            "BACKENDS": dataclasses.replace(backends, settings=settings),
        }
    )
    return app.test_client()


def bearer(token: str) -> dict[str, str]:
    """Return the Authorization header bearing token."""
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    "headers",
    [{}, bearer("wrong-token-0123456789"), {"Authorization": f"Basic {ALICE}"}, bearer("")],
    ids=["missing", "wrong", "not bearer", "empty"],
)
def test_a_request_without_a_valid_key_is_a_401_with_the_same_words(
    backends: Backends, headers: dict[str, str]
) -> None:
    client = keyed_client(backends, api_keys=KEYS)
    response = client.get("/jobs", headers=headers)
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="imgserve"'
    assert response.get_json() == UNAUTHORIZED


@pytest.mark.parametrize("path", ["/jobs/0123", "/docs", "/openapi.json", "/no-such-route"])
def test_every_endpoint_but_healthz_needs_a_key(backends: Backends, path: str) -> None:
    client = keyed_client(backends, api_keys=KEYS)
    assert client.get(path).status_code == 401
    assert client.delete("/jobs/0123").status_code == 401
    assert client.post("/jobs", json={}).status_code == 401
    assert client.get("/healthz").status_code == 200


def test_a_valid_key_is_let_in(backends: Backends) -> None:
    client = keyed_client(backends, api_keys=KEYS)
    assert client.get("/jobs", headers=bearer(BOB)).status_code == 200
    assert client.get("/jobs", headers={"Authorization": f"bearer {ALICE}"}).status_code == 200


def test_without_keys_every_request_is_let_in(client: FlaskClient) -> None:
    assert client.get("/jobs").status_code == 200
    assert client.get("/metrics").status_code == 200


def test_the_token_is_compared_with_every_key_through_compare_digest(
    backends: Backends, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = auth.load_keys(
        dataclasses.replace(backends.settings, api_keys=f"{KEYS},carol:carol-token-0123456789")
    )
    compared: list[tuple[bytes, bytes]] = []
    compare = hmac.compare_digest

    def recording(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return compare(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", recording)
    assert keys.owner(f"Bearer {ALICE}") == "alice"
    assert len(compared) == 3
    assert all(len(a) == len(b) == 32 for a, b in compared)
    compared.clear()
    assert keys.owner("Bearer nobody-0123456789abc") is None
    assert len(compared) == 3


def test_keys_come_from_a_file_with_comments_and_blank_lines(
    backends: Backends, tmp_path: Path
) -> None:
    path = tmp_path / "keys"
    path.write_text(f"# tenants\n\nalice:{ALICE}\n  bob:{BOB}  \n")
    keys = auth.load_keys(dataclasses.replace(backends.settings, api_keys_file=path))
    assert list(keys.digests) == ["alice", "bob"]
    assert keys.owner(f"Bearer {BOB}") == "bob"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("alice\n", "IMGSERVE_API_KEYS_FILE line 1: expected name:token"),
        (
            f"# a comment\nalice:{ALICE}\nbob:short-secret\n",
            "IMGSERVE_API_KEYS_FILE line 3: the token of key 'bob' must be at least 16 "
            "characters, without spaces or commas",
        ),
        (
            f"al ice:{ALICE}\n",
            "IMGSERVE_API_KEYS_FILE line 1: a key name is 1 to 64 letters, digits, '_', '.' or '-'",
        ),
        (
            f"alice:{ALICE}\nalice:{BOB}\n",
            "IMGSERVE_API_KEYS_FILE line 2: the key name 'alice' is given twice",
        ),
        (
            f"alice:{ALICE}\nbob:{ALICE}\n",
            "IMGSERVE_API_KEYS_FILE line 2: key 'bob' has the token of another key",
        ),
    ],
)
def test_a_malformed_keys_file_names_its_line_and_never_its_token(
    backends: Backends, tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "keys"
    path.write_text(text)
    with pytest.raises(SettingsError) as raised:
        auth.load_keys(dataclasses.replace(backends.settings, api_keys_file=path))
    assert str(raised.value) == message
    assert "short-secret" not in str(raised.value) and ALICE not in str(raised.value)


def test_a_malformed_keys_variable_names_its_entry(backends: Backends) -> None:
    with pytest.raises(SettingsError) as raised:
        auth.load_keys(dataclasses.replace(backends.settings, api_keys=f"alice:{ALICE},bob"))
    assert str(raised.value) == "IMGSERVE_API_KEYS entry 2: expected name:token"


def test_the_keys_never_show_in_the_settings_repr(settings: Settings) -> None:
    shown = repr(dataclasses.replace(settings, api_keys=KEYS, metrics_token=ALICE))
    assert ALICE not in shown and BOB not in shown


@pytest.mark.parametrize(
    ("changes", "headers", "status"),
    [
        ({"api_keys": KEYS}, {}, 401),
        ({"api_keys": KEYS}, bearer(ALICE), 200),
        ({"api_keys": KEYS, "metrics_open": True}, {}, 200),
        ({"api_keys": KEYS, "metrics_token": "scraper-token-0123456789"}, bearer(ALICE), 401),
        (
            {"api_keys": KEYS, "metrics_token": "scraper-token-0123456789"},
            bearer("scraper-token-0123456789"),
            200,
        ),
        ({"metrics_token": "scraper-token-0123456789"}, {}, 401),
    ],
)
def test_metrics_take_their_own_token_else_an_api_key_unless_left_open(
    backends: Backends, changes: dict[str, Any], headers: dict[str, str], status: int
) -> None:
    client = keyed_client(backends, **changes)
    assert client.get("/metrics", headers=headers).status_code == status


def test_the_client_sends_imgserve_token_as_its_bearer_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("IMGSERVE_TOKEN", ALICE)
    sent: list[requests.PreparedRequest] = []

    def send(request: requests.PreparedRequest, **_: Any) -> requests.Response:
        sent.append(request)
        response = requests.Response()
        response.status_code = 200
        response._content = (
            b'{"id": "0123", "state": "queued", "progress": {}, "images": [], "finished_at": null}'
        )
        response.headers["Content-Type"] = "application/json"
        return response

    api = Client("http://imgserve.test")
    monkeypatch.setattr(api.session, "send", send)
    api.get("0123")
    assert sent[0].headers["Authorization"] == f"Bearer {ALICE}"


@pytest.mark.parametrize(
    ("host", "changes", "allow", "refused"),
    [
        ("127.0.0.1", {}, False, False),
        ("127.0.0.2", {}, False, False),
        ("::1", {}, False, False),
        ("localhost", {}, False, False),
        ("0.0.0.0", {}, False, True),
        ("192.168.1.10", {}, False, True),
        ("0.0.0.0", {"api_keys": KEYS}, False, False),
        ("0.0.0.0", {}, True, False),
        ("0.0.0.0", {"allow_anonymous": True}, False, False),
    ],
)
def test_the_api_listens_beyond_loopback_only_with_keys_or_allowed_anonymous(
    settings: Settings, host: str, changes: dict[str, Any], allow: bool, refused: bool
) -> None:
    refusal = auth.binding_refusal(
        host, dataclasses.replace(settings, **changes), allow_anonymous=allow
    )
    expected = (
        f"refusing to listen on {host} without API keys: set IMGSERVE_API_KEYS (or "
        "IMGSERVE_API_KEYS_FILE), or pass --allow-anonymous (IMGSERVE_ALLOW_ANONYMOUS=1) "
        "on a trusted network"
    )
    assert refusal == (expected if refused else None)


def test_malformed_keys_refuse_the_binding_with_their_own_sentence(settings: Settings) -> None:
    refusal = auth.binding_refusal(
        "127.0.0.1", dataclasses.replace(settings, api_keys="alice"), allow_anonymous=False
    )
    assert refusal == "IMGSERVE_API_KEYS entry 1: expected name:token"
