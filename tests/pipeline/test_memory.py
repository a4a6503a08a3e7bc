"""A process holds one output at a time, however many outputs an image makes."""

from __future__ import annotations

import shutil
import subprocess
import sys
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from pipeline import parse_operations, process_image

# Run in a fresh interpreter set up as a worker process is; print outputs and peak RSS in KiB.
CHILD = """
import resource, sys
from pathlib import Path
import pipeline
from worker.memory import keep_large_allocations
pipeline.configure_opencv(1)
keep_large_allocations()
splits = int(sys.argv[3])
chain = pipeline.parse_operations(["split"] * splits + ["resize=2000x2000", "blur=5"])
written = pipeline.process_image(Path(sys.argv[1]), Path(sys.argv[2]), chain)
print(len(written), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""
MiB = 1024  # ru_maxrss is in KiB on Linux


def test_only_the_images_of_the_branch_being_made_are_alive(
    write: Callable[..., Path], image: np.ndarray, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = write("in.png", image)
    made: dict[str, weakref.ref[np.ndarray]] = {}
    seen: list[tuple[str, list[str]]] = []

    def watch(name: str, real: Callable[..., Any], pick: Callable[[Any], np.ndarray]) -> None:
        def watched(*args: Any, **kwargs: Any) -> Any:
            seen.append((name, [label for label, ref in made.items() if ref() is not None]))
            result = real(*args, **kwargs)
            made[f"{name} {sum(1 for each, _ in seen if each == name)}"] = weakref.ref(pick(result))
            return result

        monkeypatch.setattr(cv2, name, watched)

    watch("resize", cv2.resize, lambda result: result)
    watch("GaussianBlur", cv2.GaussianBlur, lambda result: result)
    watch("imencode", cv2.imencode, lambda result: result[1])
    process_image(source, tmp_path / "q.png", parse_operations(["split", "resize=2", "blur=3"]))
    assert seen == [
        step
        for n in range(1, 5)
        for step in [
            ("resize", []),
            ("GaussianBlur", [f"resize {n}"]),
            ("imencode", [f"GaussianBlur {n}"]),
        ]
    ]
    assert [label for label, ref in made.items() if ref() is not None] == []


def peak_rss(source: Path, folder: Path, splits: int) -> int:
    """Return the peak RSS in KiB of a fresh process that writes 4 ** splits 4 MP BMPs."""
    folder.mkdir()
    run = subprocess.run(
        [sys.executable, "-c", CHILD, str(source), str(folder / "out.bmp"), str(splits)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    shutil.rmtree(folder)  # up to 768 MB of outputs
    count, peak = run.stdout.split()
    assert int(count) == 4**splits
    return int(peak)


@pytest.mark.slow
def test_peak_memory_does_not_grow_with_the_number_of_outputs(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    """64 outputs of 12 MB each held at once would take over 700 MiB more than one."""
    source = write("tiny.png", np.zeros((8, 8, 3), np.uint8))
    assert source.stat().st_size < 100
    one = peak_rss(source, tmp_path / "one", 0)
    sixteen = peak_rss(source, tmp_path / "sixteen", 2)
    sixty_four = peak_rss(source, tmp_path / "sixty-four", 3)
    assert sixteen < one + 150 * MiB
    assert sixty_four < one + 150 * MiB
