"""Transparency end to end: decoded, carried by every operation, kept or flattened on output."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image as PILImage

from pipeline import EncodeOptions, InvalidOperation, parse_encode_options, parse_operations
from pipeline import process_image as run
from pipeline.alpha import flatten, premultiplied

Maker = Callable[[], bytes]


def disc(side: int = 64) -> np.ndarray:
    """Return an RGBA red disc with a soft edge on a transparent black background."""
    rows, cols = np.mgrid[:side, :side] + 0.5
    distance = np.hypot(rows - side / 2, cols - side / 2)
    alpha = np.clip(side * 0.4 - distance, 0, 1) * 255
    picture = np.zeros((side, side, 4), np.uint8)
    picture[..., 0] = np.where(alpha > 0, 255, 0)
    picture[..., 3] = np.rint(alpha).astype(np.uint8)
    return picture


def saved(picture: PILImage.Image, kind: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, kind, **options)
    return buffer.getvalue()


def rgba_png() -> bytes:
    return saved(PILImage.fromarray(disc(), "RGBA"), "PNG")


def la_png() -> bytes:
    rgba = disc()
    return saved(PILImage.fromarray(np.dstack([rgba[..., 0], rgba[..., 3]]), "LA"), "PNG")


def palette_png() -> bytes:
    palette = PILImage.new("P", (64, 64), 0)
    palette.putpalette([0, 0, 0, 255, 0, 0])
    palette.paste(1, (16, 16, 48, 48))
    return saved(palette, "PNG", transparency=0)


def rgba_webp() -> bytes:
    return saved(PILImage.fromarray(disc(), "RGBA"), "WEBP", lossless=True)


def rgba_tiff() -> bytes:
    return saved(PILImage.fromarray(disc(), "RGBA"), "TIFF")


def transparent_gif() -> bytes:
    picture = PILImage.fromarray(disc(), "RGBA").quantize(colors=16)
    return saved(picture, "GIF", transparency=picture.getpixel((0, 0)))


def rgba_avif() -> bytes:
    return saved(PILImage.fromarray(disc(), "RGBA"), "AVIF", quality=90)


INPUTS: dict[str, Maker] = {
    "rgba.png": rgba_png,
    "la.png": la_png,
    "palette.png": palette_png,
    "alpha.webp": rgba_webp,
    "rgba.tif": rgba_tiff,
    "transparent.gif": transparent_gif,
    "alpha.avif": rgba_avif,
}
OPERATIONS = ["resize=0.5", "blur=5", "split", "rotate=90"]


def read(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert image is not None
    return image


def straight_alpha(data: bytes) -> np.ndarray:
    """Return an input's alpha as OpenCV decodes it."""
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)[..., 3]


def expected_alpha(alpha: np.ndarray, item: str) -> np.ndarray:
    """Return the reference alpha of an operation: the float result, rounded."""
    values = alpha.astype(np.float32)
    done = {
        "resize=0.5": lambda: cv2.resize(values, (32, 32), interpolation=cv2.INTER_AREA),
        "blur=5": lambda: cv2.GaussianBlur(values, (5, 5), 0),
        "split": lambda: values[:32, :32],
        "rotate=90": lambda: cv2.rotate(values, cv2.ROTATE_90_CLOCKWISE),
    }[item]()
    return np.rint(done).astype(np.uint8)


@pytest.mark.parametrize("name", INPUTS)
@pytest.mark.parametrize("item", OPERATIONS)
@pytest.mark.parametrize(
    ("extension", "channels"), [(".png", 4), (".webp", 4), (".tif", 4), (".jpg", 3)]
)
def test_alpha_is_decoded_carried_and_kept_or_flattened(
    tmp_path: Path, name: str, item: str, extension: str, channels: int
) -> None:
    data = INPUTS[name]()
    (tmp_path / name).write_bytes(data)
    written = run(tmp_path / name, tmp_path / f"out{extension}", parse_operations([item]))
    first = read(written[0])
    if name == "la.png" and extension == ".jpg":
        assert first.ndim == 2  # gray and alpha over white flattens to gray
    else:
        assert first.shape[2] == channels
    assert first.dtype == np.uint8
    if channels == 4:
        reference = expected_alpha(straight_alpha(data), item)
        assert np.abs(first[..., 3].astype(int) - reference).max() <= 1


@pytest.mark.parametrize("extension", [".png", ".tif"])
@pytest.mark.parametrize("item", ["resize=0.5", "blur=5", "sharpen=1"])
def test_a_red_disc_keeps_red_at_its_soft_edge(tmp_path: Path, extension: str, item: str) -> None:
    (tmp_path / "disc.png").write_bytes(rgba_png())
    [written] = run(tmp_path / "disc.png", tmp_path / f"out{extension}", parse_operations([item]))
    out = read(written)
    seen = out[..., 3] > 0
    assert seen.sum() > 100
    assert out[..., 2][seen].min() >= 240  # red, in BGRA
    assert out[..., 0][seen].max() == 0 and out[..., 1][seen].max() == 0


def test_premultiplied_resampling_matches_a_reference_by_hand() -> None:
    picture = np.array([[[0, 0, 255, 255], [0, 0, 0, 0]]], np.uint8)  # red, then transparent black
    half = premultiplied(picture, lambda v: cv2.resize(v, (1, 1), interpolation=cv2.INTER_AREA))
    assert half.tolist() == [[[0, 0, 255, 128]]]


@pytest.mark.parametrize(
    ("background", "bgr"), [("#ffffff", [255, 255, 255]), ("#102030", [48, 32, 16])]
)
def test_jpeg_and_bmp_flatten_onto_the_background(
    tmp_path: Path, background: str, bgr: list[int]
) -> None:
    (tmp_path / "disc.png").write_bytes(rgba_png())
    options = parse_encode_options({"background": background})
    [bmp] = run(tmp_path / "disc.png", tmp_path / "out.bmp", parse_operations([]), encode=options)
    flat = read(bmp)
    assert flat.shape == (64, 64, 3)
    assert flat[0, 0].tolist() == bgr
    assert flat[32, 32].tolist() == [0, 0, 255]
    corner = parse_operations(["crop=0,0,16,8"])  # wholly transparent: no red rings into it
    [jpeg] = run(tmp_path / "disc.png", tmp_path / "out.jpg", corner, encode=options)
    assert np.abs(read(jpeg).astype(int) - bgr).max() <= 1


def test_flattening_half_transparent_red_over_blue_mixes_them() -> None:
    picture = np.array([[[0, 0, 255, 128]]], np.uint8)
    assert flatten(picture, (0, 0, 255)).tolist() == [[[127, 0, 128]]]


def test_gray_and_alpha_over_a_gray_background_stays_gray() -> None:
    picture = np.array([[[200, 0]]], np.uint8)
    assert flatten(picture, (16, 16, 16)).tolist() == [[16]]
    assert flatten(picture, (16, 16, 0)).tolist() == [[[0, 16, 16]]]


def test_a_fully_opaque_alpha_channel_is_dropped(tmp_path: Path) -> None:
    opaque = disc()
    opaque[..., 3] = 255
    (tmp_path / "opaque.png").write_bytes(saved(PILImage.fromarray(opaque, "RGBA"), "PNG"))
    [written] = run(tmp_path / "opaque.png", tmp_path / "out.png", parse_operations(["resize=0.5"]))
    assert read(written).shape == (32, 32, 3)


def test_grayscale_of_an_image_with_alpha_keeps_its_alpha(tmp_path: Path) -> None:
    (tmp_path / "disc.png").write_bytes(rgba_png())
    [written] = run(tmp_path / "disc.png", tmp_path / "out.png", parse_operations(["grayscale"]))
    out = read(written)
    assert out.shape == (64, 64, 4)
    assert np.array_equal(out[..., 3], straight_alpha(rgba_png()))
    assert out[32, 32].tolist() == [76, 76, 76, 255]


@pytest.mark.parametrize(
    ("value", "detail"),
    [
        (
            "white",
            "/encode/background: encode background 'white' is not a colour written \"#rrggbb\"",
        ),
        (
            "#fff",
            "/encode/background: encode background '#fff' is not a colour written \"#rrggbb\"",
        ),
        (
            255,
            '/encode/background: encode background must be a colour such as "#ffffff", not a number (255)',
        ),
    ],
)
def test_a_bad_background_is_refused_with_a_clear_message(value: object, detail: str) -> None:
    with pytest.raises(InvalidOperation) as caught:
        parse_encode_options({"background": value})
    assert str(caught.value) == detail


def test_the_background_defaults_to_white_and_is_kept_in_lower_case() -> None:
    assert EncodeOptions().background == "#ffffff"
    assert parse_encode_options({"background": "#A0B0C0"}).background == "#a0b0c0"
