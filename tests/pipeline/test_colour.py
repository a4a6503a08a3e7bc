"""Colour: ICC profiles converted to sRGB by default or kept, CMYK, and no cost without one."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image as PILImage
from PIL import ImageCms

from pipeline import parse_encode_options, parse_operations, process_image
from tests.pipeline.colours import ADOBE_RGB, DISPLAY_P3, delta_e2000, icc_profile, srgb_to_lab

PATCHES = [
    (224, 172, 140),
    (0, 128, 128),
    (230, 30, 30),
    (40, 200, 60),
    (128, 128, 128),
    (30, 60, 200),
]
PROFILES = {
    "adobe.jpg": icc_profile("Adobe RGB (1998) compatible", ADOBE_RGB, srgb_curve=False),
    "p3.png": icc_profile("Display P3 compatible", DISPLAY_P3, srgb_curve=True),
    "adobe.tif": icc_profile("Adobe RGB (1998) compatible", ADOBE_RGB, srgb_curve=False),
}


def patches() -> PILImage.Image:
    strip = np.repeat(np.repeat(np.array([PATCHES], np.uint8), 16, axis=0), 16, axis=1)
    return PILImage.fromarray(strip, "RGB")


def tagged(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    options = {"quality": 100, "subsampling": 0} if name.endswith(".jpg") else {}
    patches().save(path, icc_profile=PROFILES[name], **options)
    return path


def reference(path: Path) -> np.ndarray:
    """Return LittleCMS's own sRGB conversion of the input's decoded RGB, via Pillow."""
    with PILImage.open(path) as picture:
        source = ImageCms.ImageCmsProfile(io.BytesIO(picture.info["icc_profile"]))
        converted = ImageCms.profileToProfile(
            picture.convert("RGB"), source, ImageCms.createProfile("sRGB")
        )
    assert converted is not None
    return np.asarray(converted)


def rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def centres(picture: np.ndarray) -> np.ndarray:
    """Return each patch's centre pixel: lossy codecs blur chroma across the patches' edges."""
    return picture[8, 8::16]


def profile_of(path: Path) -> bytes | None:
    with PILImage.open(path) as picture:
        return picture.info.get("icc_profile")


def test_the_delta_e2000_helper_matches_sharmas_published_pair() -> None:
    first, second = np.array([50, 2.6772, -79.7751]), np.array([50, 0, -82.7485])
    assert round(float(delta_e2000(first, second)), 4) == 2.0425


@pytest.mark.parametrize("name", PROFILES)
@pytest.mark.parametrize("extension", [".png", ".jpg", ".webp", ".tif"])
def test_a_tagged_image_is_converted_to_srgb_and_written_untagged(
    tmp_path: Path, name: str, extension: str
) -> None:
    path = tagged(tmp_path, name)
    encode = parse_encode_options({"jpeg_quality": 100, "webp_quality": 100})
    [written] = process_image(
        path, tmp_path / f"out{extension}", parse_operations([]), encode=encode
    )
    expected = srgb_to_lab(centres(reference(path)))
    assert delta_e2000(srgb_to_lab(centres(rgb(written))), expected).max() < 1.0
    assert (
        delta_e2000(srgb_to_lab(centres(rgb(path))), expected).max() > 3
    )  # unconverted is far off
    assert profile_of(written) is None


@pytest.mark.parametrize("name", PROFILES)
@pytest.mark.parametrize("extension", [".png", ".jpg", ".webp", ".tif", ".avif"])
def test_keep_embeds_the_sources_profile_and_keeps_its_numbers(
    tmp_path: Path, name: str, extension: str
) -> None:
    path = tagged(tmp_path, name)
    keep = parse_encode_options({"color": "keep"})
    [written] = process_image(
        path, tmp_path / f"out{extension}", parse_operations(["resize=0.5"]), encode=keep
    )
    assert profile_of(written) == PROFILES[name]
    if extension == ".png":
        assert (
            np.abs(
                rgb(written).astype(int)
                - cv2.resize(rgb(path), (48, 8), interpolation=cv2.INTER_AREA)
            ).max()
            <= 1
        )


CMYK_PATCHES = [
    ((255, 0, 0, 0), (0, 255, 255)),
    ((0, 255, 0, 0), (255, 0, 255)),
    ((0, 0, 0, 128), (127, 127, 127)),
    ((0, 0, 255, 0), (255, 255, 0)),
]


def cmyk_jpeg(tmp_path: Path, *, adobe: bool) -> Path:
    """Write CMYK patches as Pillow does (inverted, with Adobe's APP14), or plain without it."""
    values = np.array([[cmyk for cmyk, _ in CMYK_PATCHES]], np.uint8)
    values = np.repeat(np.repeat(values, 16, axis=0), 16, axis=1)
    buffer = io.BytesIO()
    PILImage.fromarray(values if adobe else 255 - values, "CMYK").save(buffer, "JPEG", quality=100)
    data = buffer.getvalue()
    if not adobe:
        start = data.index(
            b"\xff\xeeAdobe"[:2] + data[data.index(b"Adobe") - 2 : data.index(b"Adobe")]
        )
        length = int.from_bytes(data[start + 2 : start + 4], "big")
        data = data[:start] + data[start + 2 + length :]
        assert b"Adobe" not in data
    path = tmp_path / ("adobe-cmyk.jpg" if adobe else "plain-cmyk.jpg")
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("adobe", [True, False])
def test_cmyk_jpegs_come_out_as_the_right_rgb(tmp_path: Path, adobe: bool) -> None:
    [written] = process_image(
        cmyk_jpeg(tmp_path, adobe=adobe), tmp_path / "out.png", parse_operations([])
    )
    out = rgb(written)
    assert out.shape == (16, 64, 3)
    for index, (_, expected) in enumerate(CMYK_PATCHES):
        assert np.abs(out[8, index * 16 + 8].astype(int) - expected).max() <= 3


def test_an_image_without_a_profile_never_imports_pillow(tmp_path: Path) -> None:
    assert cv2.imwrite(str(tmp_path / "plain.jpg"), np.full((32, 32, 3), 90, np.uint8))
    assert cv2.imwrite(str(tmp_path / "plain.png"), np.full((32, 32, 4), 90, np.uint8))
    script = (
        "import sys, pipeline\n"
        f"for name in ('plain.jpg', 'plain.png'):\n"
        f"    pipeline.process_image({str(tmp_path)!r} + '/' + name, {str(tmp_path)!r} + '/out.png',"
        " pipeline.parse_operations(['resize=0.5']))\n"
        "print('PIL' in sys.modules)\n"
    )
    found = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert found.stdout == "False\n"


def colour_inputs(tmp_path: Path) -> dict[str, Path]:
    """Write each kind of colour input the pipeline converts: CMYK, tagged RGB, HEIC."""
    import pillow_heif

    heic = tmp_path / "photo.heic"
    pillow_heif.from_pillow(patches()).save(heic, quality=95)
    return {
        "adobe-cmyk.jpg": cmyk_jpeg(tmp_path, adobe=True),
        "plain-cmyk.jpg": cmyk_jpeg(tmp_path, adobe=False),
        "adobe.jpg": tagged(tmp_path, "adobe.jpg"),
        "p3.png": tagged(tmp_path, "p3.png"),
        "photo.heic": heic,
    }


@pytest.mark.parametrize(
    "name", ["adobe-cmyk.jpg", "plain-cmyk.jpg", "adobe.jpg", "p3.png", "photo.heic"]
)
@pytest.mark.parametrize("item", ["resize=0.5", "blur=5", "split", "rotate=90"])
@pytest.mark.parametrize("extension", [".png", ".webp", ".jpg", ".tif"])
def test_colour_inputs_come_out_as_8_bit_bgr_through_every_operation(
    tmp_path: Path, name: str, item: str, extension: str
) -> None:
    source = colour_inputs(tmp_path)[name]
    written = process_image(source, tmp_path / f"out{extension}", parse_operations([item]))
    out = cv2.imread(str(written[0]), cv2.IMREAD_UNCHANGED)
    assert (out.ndim, out.shape[2], out.dtype) == (3, 3, np.uint8)


def test_keep_embeds_the_profile_in_a_16_bit_tiff_without_touching_its_samples(
    tmp_path: Path,
) -> None:
    from pipeline.embedded import tiff_profile

    profile = PROFILES["p3.png"]
    deep = np.random.default_rng(3).integers(0, 65536, (20, 30, 3), dtype=np.uint16)
    ok, data = cv2.imencodeWithMetadata(
        ".png", deep, [cv2.IMAGE_METADATA_ICCP], [np.frombuffer(profile, np.uint8)]
    )
    assert ok
    (tmp_path / "deep.png").write_bytes(data.tobytes())
    keep = parse_encode_options({"color": "keep"})
    [written] = process_image(
        tmp_path / "deep.png", tmp_path / "out.tif", parse_operations([]), encode=keep
    )
    assert tiff_profile(written.read_bytes()) == profile
    assert np.array_equal(cv2.imread(str(written), cv2.IMREAD_UNCHANGED), deep)
