"""The storage sandbox and the limits, at submission: separate roots, bombs, big outputs."""

from __future__ import annotations

import struct
import time
import zlib
from dataclasses import replace
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from app.backends import Backends
from worker.settings import Settings


def png_claiming(width: int, height: int) -> bytes:
    """Return a valid, tiny PNG header that claims width x height pixels (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\x00" * 4096)  # a few KB that would inflate to far more
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )


@pytest.fixture
def split_roots(tmp_path: Path, root: Path, backends: Backends) -> FlaskClient:
    """Return a client of an app whose inputs and outputs live in separate roots."""
    outputs = tmp_path / "results"
    outputs.mkdir()
    backends.settings = replace(backends.settings, input_root=root, output_root=outputs)
    app: Flask = create_app({"TESTING": True, "SETTINGS": backends.settings, "BACKENDS": backends})
    return app.test_client()


def test_inputs_and_outputs_resolve_in_their_own_roots(split_roots: FlaskClient) -> None:
    response = split_roots.post(
        "/jobs",
        json={"images": [{"input": "photos/cyclo1.jpg", "output": "a.jpg"}], "operations": []},
    )
    assert response.status_code == 202, response.get_json()


def test_an_output_may_not_reach_into_the_input_root(split_roots: FlaskClient) -> None:
    response = split_roots.post(
        "/jobs",
        json={
            "images": [{"input": "photos/cyclo1.jpg", "output": "../storage/photos/x.jpg"}],
            "operations": [],
        },
    )
    assert response.status_code == 422
    assert response.get_json()["errors"] == [
        {
            "pointer": "/images/0/output",
            "detail": "output '../storage/photos/x.jpg' is outside the storage root",
        }
    ]


def test_roots_come_from_the_environment(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "IMGSERVE_ROOT": str(tmp_path),
            "IMGSERVE_INPUT_ROOT": str(tmp_path / "in"),
            "IMGSERVE_OUTPUT_ROOT": str(tmp_path / "out"),
        }
    )
    assert (settings.inputs, settings.outputs) == (tmp_path / "in", tmp_path / "out")
    assert Settings.from_env({"IMGSERVE_ROOT": str(tmp_path)}).inputs == tmp_path


def test_a_decompression_bomb_is_refused_at_once_without_decoding(
    client: FlaskClient, root: Path
) -> None:
    bomb = root / "bomb.png"
    bomb.write_bytes(png_claiming(20000, 20000))
    assert bomb.stat().st_size < 1024
    started = time.monotonic()
    response = client.post(
        "/jobs", json={"images": [{"input": "bomb.png", "output": "o.png"}], "operations": []}
    )
    assert time.monotonic() - started < 1
    assert response.status_code == 422
    [problem] = response.get_json()["errors"]
    assert problem["pointer"] == "/images/0/input"
    assert (
        "20000x20000 pixels (400 megapixels) is more than the limit of 100 megapixels"
        in problem["detail"]
    )


def test_an_output_too_large_for_the_limit_is_refused_when_its_size_is_known(
    client: FlaskClient,
) -> None:
    response = client.post(
        "/jobs",
        json={
            "images": [{"input": "photos/cyclo2.jpg", "output": "big.jpg"}],
            "operations": ["resize=10"],
        },
    )
    assert response.status_code == 422
    assert response.get_json()["errors"] == [
        {
            "pointer": "/operations/0",
            "detail": "resize factor 10 would make a 10240x10240 image (105 megapixels); the limit is 100 megapixels (for input 'photos/cyclo2.jpg', 1024x1024)",
        }
    ]


def test_an_input_over_the_byte_limit_is_refused(client: FlaskClient, backends: Backends) -> None:
    backends.settings = replace(backends.settings, max_input_bytes=10_000)
    response = client.post(
        "/jobs",
        json={"images": [{"input": "photos/cyclo1.jpg", "output": "o.jpg"}], "operations": []},
    )
    assert response.status_code == 422
    [problem] = response.get_json()["errors"]
    assert problem["pointer"] == "/images/0/input"
    assert problem["detail"].endswith(" bytes, more than the limit of 10000 bytes")


def test_too_many_operations_are_refused(client: FlaskClient) -> None:
    response = client.post(
        "/jobs",
        json={
            "images": [{"input": "photos/cyclo1.jpg", "output": "o.jpg"}],
            "operations": ["flip=vertical"] * 33,
        },
    )
    assert response.status_code == 422
    [problem] = response.get_json()["errors"]
    assert problem["pointer"] == "/operations"
    assert "33" in problem["detail"] and "32" in problem["detail"]
