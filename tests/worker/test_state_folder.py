"""The state folder: one service runs its queue, and a full disk is told apart."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support import fill, small_tmpfs
from worker.state_folder import StateFolderBusy, disk_problem, holds_lock, lock_state_folder


def test_a_second_lock_on_a_state_folder_is_refused_naming_the_holder(tmp_path: Path) -> None:
    folder = tmp_path / "state"
    lock = lock_state_folder(folder)
    try:
        assert (folder / "service.lock").read_text() == f"{os.getpid()}\n"
        with pytest.raises(StateFolderBusy) as raised:
            lock_state_folder(folder)
        assert str(raised.value) == (
            f"another imgserve (pid {os.getpid()}) is running on the state folder {folder}; "
            "stop it first, or give this one its own IMGSERVE_STATE_DIR"
        )
    finally:
        os.close(lock)
    os.close(lock_state_folder(folder))  # released with its file descriptor


def test_an_inherited_lock_is_recognised_by_its_file(tmp_path: Path) -> None:
    lock = lock_state_folder(tmp_path)
    other = os.open(tmp_path / "other", os.O_RDWR | os.O_CREAT)
    try:
        assert holds_lock(lock, tmp_path) is True
        assert holds_lock(other, tmp_path) is False
        assert holds_lock(other, tmp_path / "elsewhere") is False
    finally:
        os.close(lock)
        os.close(other)


def test_a_state_folder_with_room_has_no_disk_problem(tmp_path: Path) -> None:
    assert disk_problem(tmp_path) is None
    assert list(tmp_path.iterdir()) == []  # the write probe leaves nothing


def test_a_full_state_folder_is_a_disk_problem_until_space_returns(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "small", 4096) as folder:
        filler = fill(folder)
        assert disk_problem(folder) == "the state folder's disk is full (0 KiB free)"
        filler.unlink()
        assert disk_problem(folder) is None


def test_a_missing_state_folder_is_a_disk_problem(tmp_path: Path) -> None:
    assert disk_problem(tmp_path / "gone") == (
        "the state folder cannot be written (No such file or directory)"
    )
