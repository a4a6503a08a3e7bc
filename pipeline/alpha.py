"""Alpha channels: which images have one, premultiplied work, and flattening onto a colour.

An image's last channel is its alpha when it has 2 (gray and alpha) or 4 (BGRA) channels;
samples are 8- or 16-bit, so "opaque" is the dtype's largest value. Operations that mix
neighbouring pixels (resampling, blur, sharpen) run on colour premultiplied by alpha, so a
transparent pixel's colour, often black, weighs nothing and no dark fringe appears at soft
edges; the colour is divided back afterwards. Geometry (split, crop, rotate, flip) carries
alpha as any other channel.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from pipeline.operation import Image


def has_alpha(image: Image) -> bool:
    """Return whether an image's last channel is alpha (2 or 4 channels)."""
    return image.ndim == 3 and image.shape[2] in (2, 4)


def top(image: Image) -> int:
    """Return the largest sample value of an image's dtype (255 or 65535)."""
    return 65535 if image.dtype == np.uint16 else 255


def without_opaque_alpha(image: Image) -> Image:
    """Return an image without its alpha channel if every pixel is opaque, else the image."""
    if not has_alpha(image):
        return image
    channels = image.shape[2]
    lowest = cv2.minMaxLoc(cv2.extractChannel(image, channels - 1))[0]
    if lowest < top(image):
        return image
    return image[..., 0] if channels == 2 else cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)


def premultiplied(image: Image, work: Callable[[Image], Image]) -> Image:
    """Run work on an image's colour premultiplied by its alpha; without alpha, on the image."""
    if not has_alpha(image):
        return work(image)
    most = float(top(image))
    values = image.astype(np.float32)
    values[..., :-1] *= values[..., -1:] / most
    done = work(values)
    alpha = done[..., -1:]
    done[..., :-1] *= np.divide(most, alpha, out=np.zeros_like(alpha), where=alpha > 0)
    return np.rint(np.clip(done, 0, most)).astype(image.dtype)


def flatten(image: Image, background: tuple[int, int, int]) -> Image:
    """Compose an image with alpha over an opaque (R, G, B) 8-bit background colour.

    Gray and alpha over a gray background stays gray; otherwise the result is BGR.
    """
    if not has_alpha(image):
        return image
    most = float(top(image))
    red, green, blue = background
    values = image.astype(np.float32)
    alpha = values[..., -1:] / most
    colour = values[..., :-1]
    if colour.shape[2] == 1 and not red == green == blue:
        colour = np.repeat(colour, 3, axis=2)
    shade = (blue, green, red) if colour.shape[2] == 3 else (red,)
    under = np.array(shade, np.float32) * (most / 255)
    mixed = colour * alpha + under * (1 - alpha)
    flat: Image = np.rint(np.clip(mixed, 0, most)).astype(image.dtype)
    return flat[..., 0] if flat.shape[2] == 1 else flat
