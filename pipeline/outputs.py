"""Output formats and names: the format comes from the extension, k outputs are numbered."""

from __future__ import annotations

import os

from pipeline.errors import UnsupportedFormat

OUTPUT_FORMATS = {
    ".avif": ".avif",
    ".bmp": ".bmp",
    ".jpeg": ".jpg",
    ".jpg": ".jpg",
    ".png": ".png",
    ".tif": ".tif",
    ".tiff": ".tif",
    ".webp": ".webp",
}


def output_format(path: str) -> str:
    """Return the canonical extension of an output path's format, whatever its case."""
    extension = os.path.splitext(path)[1]
    if extension.lower() in OUTPUT_FORMATS:
        return OUTPUT_FORMATS[extension.lower()]
    name, listed = os.path.basename(path), ", ".join(OUTPUT_FORMATS)
    if not extension:
        raise UnsupportedFormat(
            f"cannot write {name!r}: it has no extension to choose a format by; use one of {listed}"
        )
    raise UnsupportedFormat(
        f"cannot write {name}: {extension!r} is not a supported output format; use one of {listed}"
    )


def output_paths(output: str, count: int) -> list[str]:
    """Return the paths of count outputs: output itself for one, else {stem}_{n}{ext}."""
    if count < 1:
        raise ValueError(f"count must be at least 1, not {count}")
    if count == 1:
        return [output]
    stem, extension = os.path.splitext(output)
    return [f"{stem}_{n}{extension}" for n in range(1, count + 1)]
