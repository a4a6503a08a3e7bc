"""The storage sandbox's path resolution: the same answers as realpath, from fewer reads."""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

import pytest

from worker.paths import InRoot, UnsafePath


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
    warm = InRoot(root)  # has resolved every case once already: its folders are kept
    for path_before, _ in CASES:
        with contextlib.suppress(UnsafePath):
            warm.resolve(path_before)
    for resolve in (InRoot(root).resolve, warm.resolve):
        if expected is None:
            with pytest.raises(UnsafePath, match=r"^is outside the storage root$"):
                resolve(path)
        else:
            assert resolve(path) == real_root / expected == Path(reference)


def test_a_folder_swapped_for_a_link_is_seen_by_the_resolver_that_kept_it(
    root: Path, tmp_path: Path
) -> None:
    """A job's InRoot keeps a folder's real path, but not past the folder's replacement."""
    job = InRoot(root)
    real = Path(os.path.realpath(root))
    assert job.resolve("photos/2026/x.jpg") == real / "photos/2026/x.jpg"
    (real / "photos" / "2026").rmdir()
    (real / "photos" / "2026").symlink_to(tmp_path / "root_private")
    with pytest.raises(UnsafePath, match=r"^is outside the storage root$"):
        job.resolve("photos/2026/x.jpg")
    (real / "photos").rename(real / "moved")
    (real / "photos").symlink_to(tmp_path / "root_private")
    with pytest.raises(UnsafePath, match=r"^is outside the storage root$"):
        job.resolve("photos/a.jpg")  # a link higher up: the kept folder is not the same one
    (real / "photos").unlink()
    (real / "photos").mkdir()
    assert job.resolve("photos/a.jpg") == real / "photos/a.jpg"  # a new folder, read afresh


def test_a_resolver_reads_a_kept_folder_with_one_stat(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = InRoot(root)
    job.resolve("photos/2026/x.jpg")
    folder = os.path.join(os.path.realpath(root), "photos", "2026")
    calls: list[str] = []
    real_lstat, real_stat = os.lstat, os.stat
    monkeypatch.setattr(
        os, "lstat", lambda p, *a, **k: calls.append(f"lstat {p}") or real_lstat(p, *a, **k)
    )
    monkeypatch.setattr(
        os, "stat", lambda p, *a, **k: calls.append(f"stat {p}") or real_stat(p, *a, **k)
    )
    job.resolve("photos/2026/y.jpg")
    monkeypatch.undo()
    assert calls == [f"stat {folder}", f"lstat {folder}/y.jpg"]


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
