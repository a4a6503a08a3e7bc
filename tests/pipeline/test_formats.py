"""More formats: GIF's first frame, AVIF and HEIC in, AVIF out, and the JPEG encoder's options."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pillow_heif
import pytest
from PIL import Image as PILImage
from PIL import ImageCms

from pipeline import parse_encode_options, parse_operations, probe_size, process_image
from pipeline.headers import sniff

PHOTO = cv2.resize(
    np.random.default_rng(6).integers(0, 256, (12, 16, 3), dtype=np.uint8),
    (160, 120),
    interpolation=cv2.INTER_CUBIC,
)


def read(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert image is not None
    return image


def animated_gif(tmp_path: Path) -> Path:
    """Write a two-frame GIF: a red block on transparency, then a blue one."""
    frames = []
    for colour in (1, 2):
        frame = PILImage.new("P", (20, 10), 0)
        frame.putpalette([0, 0, 0, 255, 0, 0, 0, 0, 255])
        frame.paste(colour, (5, 2, 15, 8))
        frames.append(frame)
    path = tmp_path / "anim.gif"
    frames[0].save(
        path, save_all=True, append_images=frames[1:], transparency=0, duration=100, loop=0
    )
    return path


def test_a_gif_gives_its_first_frame_with_its_transparency(tmp_path: Path) -> None:
    [written] = process_image(animated_gif(tmp_path), tmp_path / "out.png", parse_operations([]))
    out = read(written)
    assert out.shape == (10, 20, 4)
    assert out[0, 0].tolist() == [0, 0, 0, 0]
    assert out[5, 10].tolist() == [0, 0, 255, 255]  # red, the first frame's; not blue


def heic(tmp_path: Path, size: tuple[int, int] = (40, 30)) -> Path:
    path = tmp_path / "photo.heic"
    rgb = cv2.cvtColor(cv2.resize(PHOTO, size), cv2.COLOR_BGR2RGB)
    pillow_heif.from_pillow(PILImage.fromarray(rgb)).save(path, quality=95)
    return path


def test_a_heic_is_decoded_at_its_pictures_size_not_its_coded_one(tmp_path: Path) -> None:
    path = heic(tmp_path)
    assert b"ispe\x00\x00\x00\x00\x00\x00\x00@\x00\x00\x00@" in path.read_bytes()  # coded 64x64
    assert probe_size(path) == (40, 30)
    [written] = process_image(path, tmp_path / "out.png", parse_operations(["resize=0.5"]))
    out = read(written)
    assert out.shape == (15, 20, 3)
    expected = cv2.resize(cv2.resize(PHOTO, (40, 30)), (20, 15), interpolation=cv2.INTER_AREA)
    assert np.abs(out.astype(int) - expected).mean() < 6


def test_an_avif_is_decoded_at_its_size(tmp_path: Path) -> None:
    path = tmp_path / "photo.avif"
    PILImage.fromarray(cv2.cvtColor(PHOTO, cv2.COLOR_BGR2RGB)).save(path, quality=90)
    assert probe_size(path) == (160, 120)
    [written] = process_image(path, tmp_path / "out.png", parse_operations(["rotate=90"]))
    assert read(written).shape == (160, 120, 3)


def test_avif_output_keeps_alpha_and_follows_its_quality(tmp_path: Path) -> None:
    picture = np.dstack([PHOTO, np.tile(np.arange(160, dtype=np.uint8), (120, 1))])
    assert cv2.imwrite(str(tmp_path / "in.png"), picture)
    sizes = {}
    for quality in (30, 65, 95):
        encode = parse_encode_options({"avif_quality": quality})
        [written] = process_image(
            tmp_path / "in.png", tmp_path / f"q{quality}.avif", parse_operations([]), encode=encode
        )
        assert sniff(written.read_bytes()[:64]) == ".avif"
        out = read(written)
        assert out.shape == (120, 160, 4)
        assert np.abs(out[..., 3].astype(int) - picture[..., 3]).max() <= 8
        sizes[quality] = written.stat().st_size
    assert sizes[30] < sizes[65] < sizes[95]
    assert parse_encode_options(None).avif_quality == 65


def sof(data: bytes) -> tuple[int, int]:
    """Return a JPEG's frame marker and its first component's sampling factors."""
    for marker in (0xC0, 0xC1, 0xC2):
        at = data.find(bytes([0xFF, marker]))
        if at > 0:
            return marker, data[at + 11]
    raise AssertionError("no frame header")


@pytest.mark.parametrize(
    ("options", "marker", "sampling"),
    [
        ({}, 0xC0, 0x22),
        ({"jpeg_subsampling": "4:4:4"}, 0xC0, 0x11),
        ({"jpeg_progressive": True}, 0xC2, 0x22),
        ({"jpeg_progressive": True, "jpeg_subsampling": "4:4:4"}, 0xC2, 0x11),
    ],
)
def test_jpeg_progressive_and_subsampling_reach_the_encoder(
    tmp_path: Path, options: dict[str, object], marker: int, sampling: int
) -> None:
    assert cv2.imwrite(str(tmp_path / "in.png"), PHOTO)
    encode = parse_encode_options(options)
    [written] = process_image(
        tmp_path / "in.png", tmp_path / "out.jpg", parse_operations([]), encode=encode
    )
    assert sof(written.read_bytes()) == (marker, sampling)


def test_optimised_huffman_tables_make_a_smaller_file_of_the_same_pixels(tmp_path: Path) -> None:
    assert cv2.imwrite(str(tmp_path / "in.png"), PHOTO)
    chain = parse_operations([])
    [plain] = process_image(tmp_path / "in.png", tmp_path / "plain.jpg", chain)
    optimised = parse_encode_options({"jpeg_optimize": True})
    [small] = process_image(tmp_path / "in.png", tmp_path / "small.jpg", chain, encode=optimised)
    assert small.stat().st_size < plain.stat().st_size
    assert np.array_equal(read(small), read(plain))


def test_an_avif_with_an_icc_profile_is_converted_to_srgb(tmp_path: Path) -> None:
    from tests.pipeline.colours import ADOBE_RGB, icc_profile

    profile = icc_profile("Adobe RGB (1998) compatible", ADOBE_RGB, srgb_curve=False)
    green = np.zeros((64, 64, 3), np.uint8)
    green[:] = (40, 200, 60)
    buffer = io.BytesIO()
    PILImage.fromarray(green).save(buffer, "AVIF", quality=100, icc_profile=profile)
    (tmp_path / "green.avif").write_bytes(buffer.getvalue())
    [written] = process_image(tmp_path / "green.avif", tmp_path / "out.png", parse_operations([]))
    with PILImage.open(tmp_path / "green.avif") as decoded:
        source = ImageCms.ImageCmsProfile(io.BytesIO(decoded.info["icc_profile"]))
        expected = ImageCms.profileToProfile(
            decoded.convert("RGB"), source, ImageCms.createProfile("sRGB")
        )
        assert expected is not None
        unconverted = np.asarray(decoded.convert("RGB"))[32, 32]
    got = read(written)[32, 32][::-1].astype(int)
    assert np.abs(got - np.asarray(expected)[32, 32]).max() <= 1
    assert np.abs(got - unconverted).max() > 20


def test_an_avif_is_turned_as_its_irot_box_says(tmp_path: Path) -> None:
    picture = np.zeros((20, 40, 3), np.uint8)
    picture[:5, :10] = (255, 0, 0)  # red, top-left
    exif = PILImage.Exif()
    exif[0x0112] = 6  # Pillow writes this as irot: turn 90 degrees clockwise to view
    PILImage.fromarray(picture).save(tmp_path / "turned.avif", exif=exif.tobytes(), quality=100)
    assert b"irot" in (tmp_path / "turned.avif").read_bytes()
    assert probe_size(tmp_path / "turned.avif") == (20, 40)
    [written] = process_image(tmp_path / "turned.avif", tmp_path / "out.png", parse_operations([]))
    upright = read(written)
    assert upright.shape == (40, 20, 3)
    assert upright[:10, -5:, 2].mean() > 200  # the red block is now top-right
