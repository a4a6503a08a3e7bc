"""The storage sandbox's path resolution: the same answers as realpath, from fewer reads."""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path

import pytest

from worker.paths import InRoot, UnsafePath, resolve_in_root


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """Return a root reached through a symlink, holding folders, files and links."""
    real = tmp_path / "real-root"
    (real / "photos" / "2026").mkdir(parents=True)
    (real / "photos" / "a.jpg").write_bytes(b"a")
    (tmp_path / "root_private").mkdir()
    (tmp_path / "root_private" / "secret.jpg").write_bytes(b"s")
    (real / "inside").symlink_to(real / "photos")
    (real / "outside").symlink_to(tmp_path / "root_private")
    (real / "photos" / "up").symlink_to("..")
    (real / "photos" / "b.jpg").symlink_to(real / "photos" / "a.jpg")
    (real / "photos" / "leak.jpg").symlink_to(tmp_path / "root_private" / "secret.jpg")
    (tmp_path / "root").symlink_to(real)
    return tmp_path / "root"


CASES = [
    ("photos/a.jpg", "photos/a.jpg"),
    ("photos/2026/new.jpg", "photos/2026/new.jpg"),
    ("photos/not-yet/deeper/x.jpg", "photos/not-yet/deeper/x.jpg"),
    ("./photos//./a.jpg", "photos/a.jpg"),
    ("inside/a.jpg", "photos/a.jpg"),
    ("photos/b.jpg", "photos/a.jpg"),
    ("photos/up/photos/a.jpg", "photos/a.jpg"),
    ("photos/2026/../a.jpg", "photos/a.jpg"),
    ("photos/a.jpg/x.jpg", "photos/a.jpg/x.jpg"),
    ("outside/secret.jpg", None),
    ("photos/leak.jpg", None),
    ("../root_private/secret.jpg", None),
    ("photos/../../root_private/x.jpg", None),
    ("photos/up/../x.jpg", None),
    ("/etc/passwd", None),
    (".", None),
    ("photos/..", None),
]


@pytest.mark.parametrize(("path", "expected"), CASES)
def test_a_path_resolves_to_its_real_place_inside_the_root(
    root: Path, path: str, expected: str | None
) -> None:
    real_root = Path(os.path.realpath(root))
    reference = os.path.realpath(os.path.join(real_root, path))
    inside = os.path.commonpath([real_root, reference]) == str(real_root) != reference
    assert inside == (expected is not None)  # the table agrees with realpath
    for resolve in (InRoot(root).resolve, functools.partial(resolve_in_root, root)):
        if expected is None:
            with pytest.raises(UnsafePath, match=r"^is outside the storage root$"):
                resolve(path)
        else:
            assert resolve(path) == real_root / expected == Path(reference)


def test_a_folder_swapped_for_a_link_is_seen_by_a_new_resolver(root: Path, tmp_path: Path) -> None:
    """The worker resolves afresh (resolve_in_root); one request's InRoot reads a folder once."""
    request = InRoot(root)
    assert (
        request.resolve("photos/2026/x.jpg") == Path(os.path.realpath(root)) / "photos/2026/x.jpg"
    )
    (Path(os.path.realpath(root)) / "photos" / "2026").rmdir()
    (Path(os.path.realpath(root)) / "photos" / "2026").symlink_to(tmp_path / "root_private")
    with pytest.raises(UnsafePath, match=r"^is outside the storage root$"):
        resolve_in_root(root, "photos/2026/x.jpg")


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("", "is empty"),
        ("photos/a\tb.jpg", "contains a control character"),
        ("photos/a\x7f.jpg", "contains a control character"),
        ("a/" * 512 + "x.jpg", "is longer than 1024 bytes"),
        ("photos/" + "é" * 128 + ".jpg", "has a name longer than 255 bytes"),
    ],
)
def test_a_malformed_path_is_refused_with_its_reason(root: Path, path: str, message: str) -> None:
    with pytest.raises(UnsafePath, match=f"^{re.escape(message)}$"):
        InRoot(root).resolve(path)


def test_a_long_path_of_short_names_is_accepted(root: Path) -> None:
    path = "photos/" + "abcdefghij/" * 40 + "x.jpg"
    assert InRoot(root).resolve(path) == Path(os.path.realpath(root)) / path


def test_the_filesystem_root_as_storage_root_holds_everything_but_itself() -> None:
    assert InRoot(Path("/")).resolve("etc/x.jpg") == Path("/etc/x.jpg")
    with pytest.raises(UnsafePath, match=r"^is outside the storage root$"):
        InRoot(Path("/")).resolve(".")
