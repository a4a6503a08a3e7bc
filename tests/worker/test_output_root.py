"""The worker's check before it writes an output: the API's rules, applied again."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from worker.paths import UnsafePath, output_path
from worker.settings import Settings, SettingsError, parse_rate


@pytest.fixture
def roots(tmp_path: Path) -> Settings:
    """Return settings with separate roots: tmp/out, and tmp/out/in (read only) within it."""
    (tmp_path / "out" / "in").mkdir(parents=True)
    return Settings(root=tmp_path, input_root=tmp_path / "out" / "in", output_root=tmp_path / "out")


def test_an_output_may_be_written_inside_the_output_root(roots: Settings, tmp_path: Path) -> None:
    real = tmp_path.resolve()
    assert output_path(roots, "a/b.png", overwrite=False) == real / "out" / "a" / "b.png"


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (".git/x.png", "is in a hidden folder or file (a name starting with '.')"),
        ("a/.b.png", "is in a hidden folder or file (a name starting with '.')"),
        ("in/x.png", "is inside the input root, which imgserve only reads"),
        ("link/x.png", "is inside the input root, which imgserve only reads"),
        ("../x.png", "is outside the storage root"),
        ("old.png", "already exists, and the job does not replace files (overwrite: false)"),
    ],
)
def test_the_worker_refuses_what_the_api_refuses(
    roots: Settings, tmp_path: Path, path: str, message: str
) -> None:
    os.symlink(tmp_path / "out" / "in", tmp_path / "out" / "link")
    (tmp_path / "out" / "old.png").write_bytes(b"x")
    with pytest.raises(UnsafePath) as raised:
        output_path(roots, path, overwrite=False)
    assert str(raised.value) == message


def test_a_file_that_appeared_since_submission_is_refused_then(
    roots: Settings, tmp_path: Path
) -> None:
    assert output_path(roots, "late.png", overwrite=False).name == "late.png"
    (tmp_path / "out" / "late.png").write_bytes(b"x")
    with pytest.raises(UnsafePath):
        output_path(roots, "late.png", overwrite=False)
    assert output_path(roots, "late.png", overwrite=True).name == "late.png"


def test_with_one_root_an_output_may_lie_beside_the_inputs(tmp_path: Path) -> None:
    settings = Settings(root=tmp_path)
    assert output_path(settings, "in/x.png", overwrite=True) == tmp_path.resolve() / "in" / "x.png"


@pytest.mark.parametrize(
    ("text", "rate"), [("10/s", (10.0, 10)), ("600/min", (10.0, 600)), ("36/h", (0.01, 36))]
)
def test_a_submit_rate_is_a_count_per_unit_whose_count_is_the_burst(
    text: str, rate: tuple[float, int]
) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["10", "0/s", "ten/s", "10/day", "-1/s"])
def test_a_malformed_submit_rate_is_refused(text: str) -> None:
    with pytest.raises(SettingsError) as raised:
        parse_rate(text)
    assert str(raised.value) == (
        f"IMGSERVE_SUBMIT_RATE={text!r} is not a rate such as 10/s, 600/min or 5000/h"
    )
