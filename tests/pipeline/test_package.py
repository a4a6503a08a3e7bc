from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import pytest

import pipeline
from pipeline import configure_opencv

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = {
    "Limits", "DEFAULT_LIMITS", "Step", "Chain", "parse_operations", "EncodeOptions",
    "parse_encode_options", "output_format", "output_paths", "probe_size", "plan_sizes",
    "process_image", "configure_opencv", "operation_schemas", "OPERATIONS", "Problem",
    "PipelineError", "InvalidOperation", "ImageDecodeError", "UnsupportedFormat",
    "LimitExceeded", "ImageWriteError",
}  # fmt: skip


def run(code: str, **environment: str) -> str:
    env = {key: value for key, value in os.environ.items() if key != "OPENCV_IO_MAX_IMAGE_PIXELS"}
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT, env={**env, **environment}, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return result.stdout.strip()


def test_the_package_exports_the_public_contract() -> None:
    assert set(pipeline.__all__) >= CONTRACT
    assert all(hasattr(pipeline, name) for name in pipeline.__all__)


def test_errors_form_one_tree_and_carry_a_detail() -> None:
    for error in (
        pipeline.InvalidOperation([]), pipeline.ImageDecodeError("x"),
        pipeline.UnsupportedFormat("x"), pipeline.LimitExceeded("x"),
        pipeline.ImageWriteError("x"),
    ):  # fmt: skip
        assert isinstance(error, pipeline.PipelineError)
        assert isinstance(error.detail, str)


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match=r"^Limits.max_outputs must be a positive integer, not 0$"):
        pipeline.Limits(max_outputs=0)


def test_importing_pipeline_imports_no_web_or_queue_framework_and_sets_no_threads() -> None:
    found = run(
        """
        import cv2
        threads = cv2.getNumThreads()
        import sys, pipeline
        assert cv2.getNumThreads() == threads
        print(sorted(m for m in ("flask", "celery", "pydantic", "redis") if m in sys.modules))
        """
    )
    assert found == "[]"


def test_importing_pipeline_first_sets_opencvs_own_pixel_guard(tmp_path: Path) -> None:
    printed = run(
        f"""
        import os, pipeline
        print(os.environ["OPENCV_IO_MAX_IMAGE_PIXELS"])
        from conftest import Craft
        from pathlib import Path
        path = Path({str(tmp_path)!r}) / "huge.png"
        path.write_bytes(Craft.png_claiming(20000, 20000))
        chain = pipeline.parse_operations([])
        try:
            pipeline.process_image(path, path.with_name("x.png"), chain, limits=pipeline.Limits(max_pixels=10**9))
        except pipeline.LimitExceeded as error:
            print(error.detail)
        """,
        PYTHONPATH=str(Path(__file__).parent),
    )
    assert printed.splitlines() == [
        "100000000",
        "huge.png: 20000x20000 pixels (400 megapixels) is more than the decoder's limit"
        " (OPENCV_IO_MAX_IMAGE_PIXELS)",
    ]


def test_an_environment_keeps_its_own_pixel_guard() -> None:
    assert run("import os, pipeline; print(os.environ['OPENCV_IO_MAX_IMAGE_PIXELS'])",
               OPENCV_IO_MAX_IMAGE_PIXELS="5") == "5"  # fmt: skip


def test_configure_opencv_sets_the_thread_count() -> None:
    before = cv2.getNumThreads()
    try:
        configure_opencv()
        assert cv2.getNumThreads() == 1
        configure_opencv(threads=2)
        assert cv2.getNumThreads() == 2
    finally:
        cv2.setNumThreads(before)
    with pytest.raises(ValueError, match=r"^threads must be a positive integer, not 0$"):
        configure_opencv(0)
