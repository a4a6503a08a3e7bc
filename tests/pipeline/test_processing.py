from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import pytest

from pipeline import (
    EncodeOptions,
    ImageDecodeError,
    ImageWriteError,
    InvalidOperation,
    LimitExceeded,
    Limits,
    UnsupportedFormat,
    decoding,
    output_paths,
    parse_operations,
    process_image,
    processing,
)
from pipeline.decoding import reduction_for
from pipeline.operations.resize import resize_to

if TYPE_CHECKING:
    from conftest import Craft


def files_in(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())


def read(path: Path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


@pytest.fixture
def source(write: Callable[..., Path], image: np.ndarray) -> Path:
    """Return the deterministic image, written losslessly as in.png."""
    return write("in.png", image)


@pytest.fixture
def out(tmp_path: Path) -> Path:
    """Return an empty folder for outputs."""
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


def test_one_output_is_written_under_the_name_given(
    source: Path, out: Path, image: np.ndarray
) -> None:
    written = process_image(source, out / "result.png", parse_operations(["rotate=90"]))
    assert written == [out / "result.png"]
    assert np.array_equal(read(written[0]), np.rot90(image, -1))
    assert files_in(out) == ["result.png"]


def test_two_splits_write_16_outputs_in_the_documented_order(
    source: Path, out: Path, image: np.ndarray
) -> None:
    written = process_image(source, out / "q.png", parse_operations(["split", "split"]))
    assert written == [Path(path) for path in output_paths(str(out / "q.png"), 16)]

    def quadrants(picture: np.ndarray) -> list[np.ndarray]:
        rows, cols = picture.shape[0] // 2, picture.shape[1] // 2
        return [
            picture[:rows, :cols],
            picture[:rows, cols:],
            picture[rows:, :cols],
            picture[rows:, cols:],
        ]

    expected = [inner for outer in quadrants(image) for inner in quadrants(outer)]
    assert all(
        np.array_equal(read(path), want) for path, want in zip(written, expected, strict=True)
    )


def test_missing_output_folders_are_created(source: Path, tmp_path: Path) -> None:
    written = process_image(source, tmp_path / "a" / "b" / "c" / "x.jpg", parse_operations([]))
    assert written[0].is_file()


def test_outputs_get_the_usual_permissions(source: Path, out: Path) -> None:
    previous = os.umask(0o022)
    try:
        written = process_image(source, out / "x.png", parse_operations([]))
    finally:
        os.umask(previous)
    assert written[0].stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize("extension", [".jpg", ".JPEG", ".png", ".webp", ".tif", ".tiff", ".bmp"])
@pytest.mark.parametrize("items", [[], ["grayscale"]])
def test_every_format_is_written_in_color_or_gray(
    source: Path, out: Path, extension: str, items: list[str]
) -> None:
    written = process_image(source, out / f"x{extension}", parse_operations(items))
    assert cv2.imread(str(written[0])).shape == (23, 37, 3)


def test_encode_options_reach_the_encoders(source: Path, out: Path) -> None:
    chain = parse_operations(["resize=4"])
    low = process_image(source, out / "low.jpg", chain, encode=EncodeOptions(jpeg_quality=10))
    high = process_image(source, out / "high.jpg", chain, encode=EncodeOptions(jpeg_quality=95))
    assert low[0].stat().st_size < high[0].stat().st_size / 2


def test_webp_is_lossy_by_default(source: Path, out: Path, image: np.ndarray) -> None:
    written = process_image(source, out / "x.webp", parse_operations([]))
    assert not np.array_equal(cv2.imread(str(written[0])), image)


def test_on_step_reports_decode_each_application_of_each_step_and_encode(
    source: Path, out: Path
) -> None:
    calls: list[tuple[str, float]] = []
    chain = parse_operations(["split", "resize=2", "splitQuadrants=false"])
    process_image(source, out / "x.png", chain, on_step=lambda name, s: calls.append((name, s)))
    names = [name for name, _ in calls]
    assert names == ["decode", "split", *["resize"] * 4, *["split"] * 4, "encode"]
    assert all(isinstance(seconds, float) and seconds >= 0 for _, seconds in calls)


@pytest.fixture
def failing_encoder(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[int, bool], None]]:
    """Make cv2.imencode fail on its nth call, by raising or by returning False."""

    def arm(nth: int, raises: bool) -> None:
        real, calls = cv2.imencode, []

        def imencode(*args: Any, **kwargs: Any) -> Any:
            calls.append(1)
            if len(calls) == nth:
                if raises:
                    raise cv2.error("simulated encoder failure")
                return False, np.empty(0, np.uint8)
            return real(*args, **kwargs)

        monkeypatch.setattr(cv2, "imencode", imencode)

    yield arm


@pytest.mark.parametrize("raises", [True, False])
def test_a_failed_encode_leaves_no_file_and_no_temporary_file(
    source: Path, out: Path, failing_encoder: Callable[[int, bool], None], raises: bool
) -> None:
    failing_encoder(3, raises)
    with pytest.raises(ImageWriteError) as caught:
        process_image(source, out / "q.png", parse_operations(["split"]))
    assert caught.value.detail == "cannot write q_3.png: OpenCV could not encode it as PNG"
    assert files_in(out) == []


def test_a_failed_write_removes_its_temporary_files(
    source: Path, out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real, calls = os.fsync, []

    def fsync(descriptor: int) -> None:
        calls.append(descriptor)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(descriptor)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(ImageWriteError) as caught:
        process_image(source, out / "q.jpg", parse_operations(["split"]))
    assert caught.value.detail == "cannot write q_2.jpg: No space left on device"
    assert files_in(out) == []


def test_a_full_disk_at_a_later_output_removes_the_earlier_ones_temporary_files(
    source: Path, out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real, opened = os.fdopen, []

    def fdopen(descriptor: int, mode: str) -> Any:
        file = real(descriptor, mode)
        opened.append(file)
        if len(opened) == 3:
            assert len(files_in(out)) == 3  # two written, the third just created

            def write(data: object) -> int:
                raise OSError(errno.ENOSPC, "No space left on device")

            file.write = write
        return file

    monkeypatch.setattr(os, "fdopen", fdopen)
    with pytest.raises(ImageWriteError) as caught:
        process_image(source, out / "q.jpg", parse_operations(["split"]))
    assert caught.value.detail == "cannot write q_3.jpg: No space left on device"
    assert files_in(out) == []


def test_a_failed_move_into_place_removes_the_outputs_already_moved(
    source: Path, out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real, calls = os.replace, []

    def replace(src: Any, dst: Any) -> None:
        calls.append(dst)
        if len(calls) == 3:
            raise OSError(errno.EIO, "Input/output error")
        real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(ImageWriteError, match=r"^cannot write q_3.jpg: Input/output error$"):
        process_image(source, out / "q.jpg", parse_operations(["split"]))
    assert files_in(out) == []


def test_outputs_are_written_one_at_a_time_then_fsynced_then_moved_into_place(
    source: Path, out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[str] = []
    real_encode, real_open, real_fsync, real_replace = cv2.imencode, os.open, os.fsync, os.replace

    def imencode(*args: Any) -> Any:
        events.append("encode")
        return real_encode(*args)

    def open_file(path: Any, flags: int, *args: Any) -> int:
        events.append(f"create {Path(path).name[:9]}" if flags & os.O_CREAT else "open")
        return real_open(path, flags, *args)

    def fsync(descriptor: int) -> None:
        events.append("fsync")
        real_fsync(descriptor)

    def replace(src: Any, dst: Any) -> None:
        events.append(f"replace {Path(dst).name}")
        real_replace(src, dst)

    monkeypatch.setattr(cv2, "imencode", imencode)
    monkeypatch.setattr(os, "open", open_file)
    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    process_image(source, out / "q.png", parse_operations(["split"]))
    assert events == [
        "encode", "create .q_1.png.", "encode", "create .q_2.png.",
        "encode", "create .q_3.png.", "encode", "create .q_4.png.",
        "open", "fsync", "open", "fsync", "open", "fsync", "open", "fsync",
        "replace q_1.png", "replace q_2.png", "replace q_3.png", "replace q_4.png",
    ]  # fmt: skip


class Interrupted(BaseException):
    """Stands in for what can stop a task between two outputs (a time limit, a shutdown)."""


def test_an_interruption_at_the_last_output_removes_the_earlier_ones_temporary_files(
    source: Path, out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real, seen = cv2.flip, []

    def flip(*args: Any) -> Any:
        seen.append(files_in(out))
        if len(seen) == 4:
            raise Interrupted
        return real(*args)

    monkeypatch.setattr(cv2, "flip", flip)
    with pytest.raises(Interrupted):
        process_image(source, out / "q.png", parse_operations(["split", "flip=horizontal"]))
    assert [len(names) for names in seen] == [0, 1, 2, 3]
    assert all(name.startswith((".q_1.png.", ".q_2.png.", ".q_3.png.")) for name in seen[3])
    assert files_in(out) == []


@pytest.mark.parametrize("folders", [["a.png"], ["a.png", "c"], ["a.png", "c", "d"]])
def test_an_output_whose_path_runs_through_a_file_names_that_file(
    source: Path, out: Path, folders: list[str]
) -> None:
    (out / "a.png").write_bytes(b"a file, not a folder")
    with pytest.raises(ImageWriteError) as caught:
        process_image(source, out.joinpath(*folders, "b.png"), parse_operations([]))
    assert caught.value.detail == "cannot write b.png: a.png in its path is a file, not a folder"
    assert files_in(out) == ["a.png"]


def test_an_output_whose_path_runs_through_a_file_inside_a_folder_names_that_file(
    source: Path, out: Path
) -> None:
    (out / "x").mkdir()
    (out / "x" / "y.jpg").write_bytes(b"a file, not a folder")
    with pytest.raises(ImageWriteError) as caught:
        process_image(source, out / "x" / "y.jpg" / "q.jpg", parse_operations(["split"]))
    assert caught.value.detail == "cannot write q_1.jpg: y.jpg in its path is a file, not a folder"
    assert files_in(out) == ["x/y.jpg"]


def test_an_output_too_large_for_its_format_writes_nothing(source: Path, out: Path) -> None:
    chain = parse_operations([{"op": "resize", "width": 20000, "height": 10}])
    with pytest.raises(ImageWriteError) as caught:
        process_image(source, out / "wide.webp", chain)
    assert caught.value.detail == (
        "cannot write wide.webp: a WebP image may be at most 16383 pixels wide and high,"
        " and this one is 20000x10"
    )
    assert files_in(out) == []


def test_an_output_may_not_overwrite_the_input(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = source.read_bytes()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "link.png").symlink_to(source)
    os.link(source, tmp_path / "hard.png")
    chain = parse_operations(["rotate=90"])
    for output in (
        source,
        Path("in.png"),
        tmp_path / "sub" / ".." / "in.png",
        tmp_path / "link.png",
    ):
        with pytest.raises(ImageWriteError, match=r"^\S+ is the input image; an output may not"):
            process_image(source, output, chain)
    with pytest.raises(ImageWriteError, match=r"^hard.png is the input image"):
        process_image(source, tmp_path / "hard.png", chain)
    assert source.read_bytes() == original


def test_no_numbered_output_may_overwrite_the_input(
    write: Callable[..., Path], image: np.ndarray, tmp_path: Path
) -> None:
    source = write("q_2.png", image)
    with pytest.raises(ImageWriteError, match=r"^q_2.png is the input image"):
        process_image(source, tmp_path / "q.png", parse_operations(["split"]))
    assert files_in(tmp_path) == ["q_2.png"]


def test_an_unsupported_output_format_is_refused_before_reading(
    tmp_path: Path,
) -> None:
    with pytest.raises(UnsupportedFormat, match=r"^cannot write x.gif: '.gif' is not a supported"):
        process_image(tmp_path / "missing.jpg", tmp_path / "x.gif", parse_operations([]))


def test_a_step_that_cannot_apply_is_an_invalid_operation(source: Path, out: Path) -> None:
    with pytest.raises(InvalidOperation, match=r"^/operations/1: crop 30x5 at x=0, y=0 does not"):
        process_image(source, out / "x.png", parse_operations(["split", "crop=0,0,30,5"]))
    assert files_in(out) == []


def cut_jpeg(jpeg: bytes, keep: int) -> bytes:
    return jpeg[:keep]


@pytest.mark.parametrize("progressive", [0, 1])
@pytest.mark.parametrize("keep", [0.5, 0.9, -2])
def test_a_truncated_jpeg_is_refused(
    photo: Path, tmp_path: Path, progressive: int, keep: float
) -> None:
    picture = cv2.imread(str(photo))
    jpeg = cv2.imencode(".jpg", picture, [cv2.IMWRITE_JPEG_PROGRESSIVE, progressive])[1].tobytes()
    cut = jpeg[: int(len(jpeg) * keep)] if keep > 0 else jpeg[: int(keep)]
    (tmp_path / "cut.jpg").write_bytes(cut)
    with pytest.raises(ImageDecodeError) as caught:
        process_image(tmp_path / "cut.jpg", tmp_path / "x.jpg", parse_operations([]))
    assert caught.value.detail == "cut.jpg is truncated: its JPEG data stops before the end marker"
    assert files_in(tmp_path) == ["cut.jpg"]


def test_a_jpeg_with_data_after_its_end_marker_is_accepted(
    write: Callable[..., Path], image: np.ndarray, tmp_path: Path
) -> None:
    path = write("trailer.jpg", image)
    path.write_bytes(path.read_bytes() + b"appended by a camera")
    assert process_image(path, tmp_path / "x.png", parse_operations([]))[0].is_file()


@pytest.mark.parametrize("extension", [".png", ".webp", ".tif", ".bmp"])
def test_damaged_image_data_is_refused(
    write: Callable[..., Path], image: np.ndarray, tmp_path: Path, extension: str
) -> None:
    path = write(f"whole{extension}", np.tile(image, (4, 4, 1)))
    damaged = tmp_path / f"damaged{extension}"
    damaged.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ImageDecodeError) as caught:
        process_image(damaged, tmp_path / "x.png", parse_operations([]))
    assert caught.value.detail.startswith(f"damaged{extension} ")


@pytest.mark.parametrize(
    ("name", "data", "detail"),
    [
        ("empty.jpg", b"", "empty.jpg is empty"),
        ("notes.txt", b"not an image", "notes.txt is not an image in a supported format (JPEG, PNG, WebP, TIFF, BMP, GIF, AVIF and HEIC)"),
    ],
)  # fmt: skip
def test_an_empty_or_non_image_file_is_refused(
    tmp_path: Path, name: str, data: bytes, detail: str
) -> None:
    (tmp_path / name).write_bytes(data)
    with pytest.raises(ImageDecodeError) as caught:
        process_image(tmp_path / name, tmp_path / "x.png", parse_operations([]))
    assert caught.value.detail == detail


@pytest.mark.parametrize("kind", ["png", "jpeg"])
def test_a_huge_claim_fails_fast_without_decoding(
    craft: Craft, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    def refuse(*args: object) -> None:
        raise AssertionError("a 20000x20000 image must never reach the decoder")

    monkeypatch.setattr(cv2, "imdecode", refuse)
    path = tmp_path / f"huge.{kind}"
    path.write_bytes(getattr(craft, f"{kind}_claiming")(20000, 20000))
    started = time.perf_counter()
    with pytest.raises(LimitExceeded, match=r"^huge\.\w+: 20000x20000 pixels \(400 megapixels\)"):
        process_image(path, tmp_path / "x.jpg", parse_operations(["resize=0.1"]))
    assert time.perf_counter() - started < 0.25  # milliseconds, with room for a busy CI machine


@pytest.mark.parametrize("kind", ["jpeg", "png", "webp", "tiff"])
@pytest.mark.parametrize("items", [[], ["resize=0.5"]])
def test_exif_orientation_is_applied_on_decoding(
    craft: Craft, marked: np.ndarray, tmp_path: Path, kind: str, items: list[str]
) -> None:
    path = tmp_path / f"turned.{kind}"
    path.write_bytes(getattr(craft, f"{kind}_oriented")(marked, 6))
    [written] = process_image(path, tmp_path / "x.png", parse_operations(items))
    upright = read(written)
    scale = 2 if items else 1
    assert upright.shape == (60 // scale, 40 // scale, 3)
    # Orientation 6 means "turn 90 degrees clockwise to view": the red block goes top-right.
    corner = upright[: 20 // scale, -10 // scale :].reshape(-1, 3).mean(axis=0)
    assert corner[2] > 200 and corner[0] < 60
    assert upright[-5:, :5].mean() == pytest.approx(128, abs=10)


@pytest.mark.parametrize(
    ("size", "target", "reduction"),
    [
        ((1024, 754), (512, 377), 2),
        ((1024, 754), (513, 377), 1),
        ((5800, 4271), (2900, 2136), 2),  # resize=0.5 of an odd side rounds to ceil(side / 2)
        ((1024, 754), (256, 188), 4),
        ((1024, 754), (102, 75), 8),
        ((1024, 754), (128, 95), 8),
        ((1024, 754), (128, 96), 4),
        ((4000, 3000), (400, 300), 8),
        ((9, 9), (2, 2), 8),
        ((9, 9), (3, 3), 4),
        ((9, 9), (6, 5), 1),
    ],
)
def test_the_largest_jpeg_reduction_that_covers_the_target_is_chosen(
    size: tuple[int, int], target: tuple[int, int], reduction: int
) -> None:
    assert reduction_for(size, target) == reduction


@pytest.fixture
def reductions(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record the reduction (1, 2, 4 or 8) of every decode."""
    real, seen = decoding.decode, []

    def decode(source: Any, reduction: int = 1) -> Any:
        seen.append(reduction)
        return real(source, reduction)

    monkeypatch.setattr(decoding, "decode", decode)
    monkeypatch.setattr(processing, "decode", decode)
    return seen


@pytest.mark.parametrize(
    ("items", "reduction", "bound"),
    [
        (["resize=0.5"], 2, 1.0),
        (["resize=0.25"], 4, 5.0),
        (["resize=0.1"], 8, 5.0),
        ([{"op": "resize", "width": 100}], 8, 5.0),
        (["resize=0.3", "blur=3"], 2, 1.5),
    ],
)
def test_shrink_on_load_gives_the_same_size_and_close_pixels(
    photo: Path, tmp_path: Path, reductions: list[int], items: list[object], reduction: int,
    bound: float,
) -> None:  # fmt: skip
    """Shrink-on-load output differs from full decode + INTER_AREA by a mean of under 1 level at
    1/2 and under 5 (of 255) at 1/4 and 1/8 on this detailed photo."""
    chain = parse_operations(items)
    [written] = process_image(photo, tmp_path / "x.png", chain)
    assert reductions == [reduction]
    shrunk = read(written)
    full = resize_to(cv2.imread(str(photo)), (shrunk.shape[1], shrunk.shape[0]))
    for step in chain.steps[1:]:
        full = step.operation.apply(full, **step.params)
    assert shrunk.shape == full.shape
    assert np.abs(shrunk.astype(int) - full).mean() < bound


@pytest.mark.parametrize("items", [["resize=0.6"], ["blur=3", "resize=0.1"], ["resize=2"]])
def test_shrink_on_load_is_only_for_a_first_resize_by_half_or_less(
    photo: Path, tmp_path: Path, reductions: list[int], items: list[str]
) -> None:
    process_image(photo, tmp_path / "x.jpg", parse_operations(items))
    assert reductions == [1]


def test_shrink_on_load_is_only_for_jpeg(
    write: Callable[..., Path], image: np.ndarray, tmp_path: Path, reductions: list[int]
) -> None:
    path = write("big.png", np.tile(image, (4, 4, 1)))
    process_image(path, tmp_path / "x.jpg", parse_operations(["resize=0.1"]))
    assert reductions == [1]


def test_a_chain_over_the_limits_is_refused_before_anything_else(source: Path, out: Path) -> None:
    chain = parse_operations(["split"] * 20, limits=Limits(max_outputs=4**20))
    with pytest.raises(InvalidOperation) as caught:
        process_image(source, out / "x.png", chain)
    assert caught.value.detail == (
        "/operations/4: 20 splits would make 1099511627776 outputs per image; the limit is 256"
    )


def test_shrink_on_load_halves_an_odd_sized_jpeg_exactly(
    photo: Path, write: Callable[..., Path], tmp_path: Path, reductions: list[int]
) -> None:
    odd = write("odd.jpg", cv2.imread(str(photo))[:753, :1023], (cv2.IMWRITE_JPEG_QUALITY, 95))
    reductions.clear()
    [written] = process_image(odd, tmp_path / "x.png", parse_operations(["resize=0.5"]))
    assert reductions == [2]
    shrunk = read(written)
    full = resize_to(cv2.imread(str(odd)), (512, 376))  # round(511.5) = 512, round(376.5) = 376
    assert shrunk.shape == full.shape
    # Odd sides drift by up to half a pixel toward the far edges: 3.5 levels on this photo.
    assert np.abs(shrunk.astype(int) - full).mean() < 5.0


def test_a_retry_removes_what_a_killed_attempt_left_behind(source: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    leftovers = [out / ".q.jpg.0badcafe.tmp", out / ".q.jpg.12345678.tmp"]
    for leftover in leftovers:
        leftover.write_bytes(b"half an image")
    unrelated = out / ".other.jpg.0badcafe.tmp"
    unrelated.write_bytes(b"someone else's")
    process_image(source, out / "q.jpg", parse_operations([]))  # a first attempt: no listing
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [".other.jpg.0badcafe.tmp", ".q.jpg.0badcafe.tmp", ".q.jpg.12345678.tmp", "q.jpg"]
    )
    process_image(source, out / "q.jpg", parse_operations([]), retry=True)
    assert sorted(p.name for p in out.iterdir()) == [".other.jpg.0badcafe.tmp", "q.jpg"]
    assert cv2.imread(str(out / "q.jpg")).shape == cv2.imread(str(source)).shape
