from __future__ import annotations

import pytest

from pipeline import (
    EncodeOptions,
    InvalidOperation,
    Problem,
    UnsupportedFormat,
    output_format,
    output_paths,
    parse_encode_options,
)

FORMATS = ".avif, .bmp, .jpeg, .jpg, .png, .tif, .tiff, .webp"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("a.jpg", ".jpg"),
        ("a.jpeg", ".jpg"),
        ("A.JPEG", ".jpg"),
        ("out/b.png", ".png"),
        ("c.WebP", ".webp"),
        ("/srv/d.tif", ".tif"),
        ("e.tiff", ".tif"),
        ("f.bmp", ".bmp"),
        ("archive.tar.png", ".png"),
    ],
)
def test_output_format_comes_from_the_extension_whatever_its_case(path: str, expected: str) -> None:
    assert output_format(path) == expected


@pytest.mark.parametrize(
    ("path", "detail"),
    [
        ("out/a.gif", f"cannot write a.gif: '.gif' is not a supported output format; use one of {FORMATS}"),
        ("a.JPG2", f"cannot write a.JPG2: '.JPG2' is not a supported output format; use one of {FORMATS}"),
        ("/srv/data/noext", f"cannot write 'noext': it has no extension to choose a format by; use one of {FORMATS}"),
        ("/srv/data/", f"cannot write '': it has no extension to choose a format by; use one of {FORMATS}"),
    ],
)  # fmt: skip
def test_an_unsupported_output_format_is_refused_naming_the_file_only(
    path: str, detail: str
) -> None:
    with pytest.raises(UnsupportedFormat) as caught:
        output_format(path)
    assert caught.value.detail == detail


@pytest.mark.parametrize(
    ("output", "count", "expected"),
    [
        ("out/a.jpg", 1, ["out/a.jpg"]),
        ("out/a.jpg", 4, ["out/a_1.jpg", "out/a_2.jpg", "out/a_3.jpg", "out/a_4.jpg"]),
        ("a.b.png", 2, ["a.b_1.png", "a.b_2.png"]),
        ("../up/x.WEBP", 2, ["../up/x_1.WEBP", "../up/x_2.WEBP"]),
    ],
)
def test_output_paths_number_k_outputs_keeping_the_folder_as_given(
    output: str, count: int, expected: list[str]
) -> None:
    assert output_paths(output, count) == expected


def test_sixteen_output_paths_run_from_1_to_16() -> None:
    paths = output_paths("/data/out/photo.jpg", 16)
    assert paths[0] == "/data/out/photo_1.jpg" and paths[-1] == "/data/out/photo_16.jpg"
    assert len(set(paths)) == 16


def test_output_paths_needs_at_least_one_output() -> None:
    with pytest.raises(ValueError, match="count must be at least 1, not 0"):
        output_paths("a.jpg", 0)


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (None, EncodeOptions(90, 80, 1)),
        ({}, EncodeOptions()),
        ({"jpeg_quality": 75}, EncodeOptions(jpeg_quality=75)),
        ({"webp_quality": 100.0, "png_compression": 9}, EncodeOptions(webp_quality=100, png_compression=9)),
        ({"jpeg_quality": 0, "webp_quality": 1, "png_compression": 0}, EncodeOptions(0, 1, 0)),
    ],
)  # fmt: skip
def test_encode_options_parse_with_defaults_filled_in(obj: object, expected: EncodeOptions) -> None:
    options = parse_encode_options(obj)
    assert options == expected
    assert parse_encode_options(options.to_json()) == options


@pytest.mark.parametrize(
    ("obj", "pointer", "detail"),
    [
        ({"jpeg_quality": 101}, "/encode/jpeg_quality", "encode jpeg_quality 101 is not in the range 0 <= jpeg_quality <= 100"),
        ({"jpeg_quality": 90.5}, "/encode/jpeg_quality", "encode jpeg_quality 90.5 is not an integer"),
        ({"webp_quality": 0}, "/encode/webp_quality", "encode webp_quality 0 is not in the range 1 <= webp_quality <= 100"),
        ({"png_compression": 10}, "/encode/png_compression", "encode png_compression 10 is not in the range 0 <= png_compression <= 9"),
        ({"png_compression": True}, "/encode/png_compression", "encode png_compression must be an integer, not a boolean (true)"),
        ({"quality": 5}, "/encode/quality", "encode has no option 'quality'; its options are jpeg_quality, webp_quality, png_compression, avif_quality, jpeg_progressive, jpeg_subsampling, jpeg_optimize, background, color, metadata"),
        ("fast", "/encode", "encode must be an object, not a string ('fast')"),
    ],
)  # fmt: skip
def test_bad_encode_options_are_refused_with_a_pointer(
    obj: object, pointer: str, detail: str
) -> None:
    with pytest.raises(InvalidOperation) as caught:
        parse_encode_options(obj)
    assert caught.value.problems == [Problem(pointer, detail)]


def test_every_bad_encode_option_is_listed() -> None:
    with pytest.raises(InvalidOperation) as caught:
        parse_encode_options(
            {"jpeg_quality": -1, "png_compression": "9"}, pointer="/images/0/encode"
        )
    assert [problem.pointer for problem in caught.value.problems] == [
        "/images/0/encode/jpeg_quality",
        "/images/0/encode/png_compression",
    ]


def test_encode_options_check_values_given_in_python_too() -> None:
    with pytest.raises(
        ValueError, match=r"^jpeg_quality 101 is not in the range 0 <= jpeg_quality <= 100$"
    ):
        EncodeOptions(jpeg_quality=101)
