"""Limits on the work one request may ask for, and the checks that enforce them."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.errors import LimitExceeded


@dataclass(frozen=True)
class Limits:
    """Bound chain length, fan-out, image pixels and input bytes."""

    max_operations: int = 32
    max_outputs: int = 256
    max_pixels: int = 100_000_000
    max_input_bytes: int = 200 * 2**20

    def __post_init__(self) -> None:
        for name in ("max_operations", "max_outputs", "max_pixels", "max_input_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"Limits.{name} must be a positive integer, not {value!r}")


DEFAULT_LIMITS = Limits()


def megapixels(pixels: int) -> str:
    """Format a pixel count in megapixels: whole above 100, else three significant digits."""
    value = pixels / 1e6
    if value >= 100:
        return str(round(value))
    return f"{float(f'{value:.3g}'):f}".rstrip("0").rstrip(".")


def check_pixels(name: str, width: int, height: int, limits: Limits) -> None:
    """Raise LimitExceeded if a width x height image is more than the pixel limit."""
    if width * height > limits.max_pixels:
        raise LimitExceeded(
            f"{name}: {width}x{height} pixels ({megapixels(width * height)} megapixels)"
            f" is more than the limit of {megapixels(limits.max_pixels)} megapixels"
        )


def check_input_bytes(name: str, size: int, limits: Limits) -> None:
    """Raise LimitExceeded if an input file is more than the byte limit."""
    if size > limits.max_input_bytes:
        raise LimitExceeded(
            f"{name} is {_bytes(size)}, more than the limit of {_bytes(limits.max_input_bytes)}"
        )


def _bytes(size: int) -> str:
    return f"{size / 2**20:.1f}".removesuffix(".0") + " MiB" if size >= 2**20 else f"{size} bytes"
