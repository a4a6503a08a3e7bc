"""Metadata: strip (the default) drops EXIF and XMP, copyright keeps two fields, keep keeps all."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from pipeline import InvalidOperation, parse_encode_options, parse_operations, process_image

XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/></x:xmpmeta>'
GPS = 0x8825


def tagged_photo(tmp_path: Path) -> Path:
    """Write a 40x20 JPEG whose EXIF has orientation 6, artist, copyright, make and GPS."""
    exif = PILImage.Exif()
    exif[0x0112] = 6
    exif[0x013B] = "Ann Example"
    exif[0x8298] = "(c) 2026 Ann Example"
    exif[0x010F] = "Camera Maker"
    exif.get_ifd(GPS).update({1: "N", 2: (52.0, 22.0, 1.5)})
    path = tmp_path / "tagged.jpg"
    PILImage.fromarray(np.full((20, 40, 3), 120, np.uint8)).save(
        path, exif=exif, xmp=XMP, quality=95
    )
    return path


def run(tmp_path: Path, extension: str, mode: str | None) -> PILImage.Image:
    encode = parse_encode_options(None if mode is None else {"metadata": mode})
    [written] = process_image(
        tagged_photo(tmp_path), tmp_path / f"out{extension}", parse_operations([]), encode=encode
    )
    return PILImage.open(written)


def has_xmp(tmp_path: Path, extension: str) -> bool:
    return XMP in (tmp_path / f"out{extension}").read_bytes()


@pytest.mark.parametrize("extension", [".jpg", ".png", ".webp"])
@pytest.mark.parametrize("mode", [None, "strip"])
def test_strip_leaves_no_exif_gps_or_xmp(tmp_path: Path, extension: str, mode: str | None) -> None:
    with run(tmp_path, extension, mode) as out:
        assert dict(out.getexif()) == {}
        assert not has_xmp(tmp_path, extension)
        assert out.size == (20, 40)  # the orientation was applied


@pytest.mark.parametrize("extension", [".jpg", ".png", ".webp"])
def test_copyright_keeps_exactly_the_artist_and_copyright(tmp_path: Path, extension: str) -> None:
    with run(tmp_path, extension, "copyright") as out:
        assert dict(out.getexif()) == {0x013B: "Ann Example", 0x8298: "(c) 2026 Ann Example"}
        assert not has_xmp(tmp_path, extension)


@pytest.mark.parametrize("extension", [".jpg", ".png", ".webp"])
def test_keep_keeps_the_rest_with_orientation_1(tmp_path: Path, extension: str) -> None:
    with run(tmp_path, extension, "keep") as out:
        exif = out.getexif()
        assert {tag: exif[tag] for tag in (0x0112, 0x013B, 0x8298, 0x010F)} == {
            0x0112: 1,
            0x013B: "Ann Example",
            0x8298: "(c) 2026 Ann Example",
            0x010F: "Camera Maker",
        }
        assert exif.get_ifd(GPS) == {1: "N", 2: (52.0, 22.0, 1.5)}
        assert has_xmp(tmp_path, extension)
        assert out.size == (20, 40)


def test_a_bad_metadata_mode_is_refused_listing_the_modes() -> None:
    with pytest.raises(InvalidOperation) as caught:
        parse_encode_options({"metadata": "all"})
    assert (
        str(caught.value)
        == "/encode/metadata: encode metadata 'all' is not one of 'strip', 'copyright', 'keep'"
    )
