"""Make the sample photos in examples/images (run once; the results are committed).

They are synthetic scenes drawn with OpenCV, so the repository ships images it
made itself: `python examples/make_images.py`.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).parent / "images"


def scene(width: int, height: int, seed: int, sky: tuple[int, int, int]) -> np.ndarray:
    """Draw a landscape: a graded sky, a sun, hills, and a little sensor noise."""
    rng = np.random.default_rng(seed)
    rows = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    top = np.array(sky, dtype=np.float32)
    image = (top * (1 - rows) + np.array([230, 230, 250], np.float32) * rows) * np.ones(
        (1, width, 1), np.float32
    )
    image = image.astype(np.uint8)
    sun = (int(width * rng.uniform(0.2, 0.8)), int(height * rng.uniform(0.15, 0.35)))
    cv2.circle(image, sun, int(min(width, height) * 0.08), (80, 220, 255), -1, cv2.LINE_AA)
    for layer in range(3):
        xs = np.arange(0, width + 20, 20)
        base = height * (0.55 + 0.12 * layer)
        ys = base + rng.normal(0, height * 0.04, xs.size).cumsum() * 0.3
        points = np.column_stack([xs, ys]).astype(np.int32)
        polygon = np.vstack([points, [[width, height], [0, height]]])
        colour = (40 + 30 * layer, 110 - 20 * layer, 50 + 10 * layer)
        cv2.fillPoly(image, [polygon], colour, cv2.LINE_AA)
    noise = rng.normal(0, 4, image.shape)
    return np.clip(image + noise, 0, 255).astype(np.uint8)


def main() -> None:
    """Write four sample photos, the same sizes as py-image-server's four seed photos."""
    HERE.mkdir(exist_ok=True)
    samples = {
        "dawn.jpg": (1024, 754, 1, (140, 90, 60)),
        "dusk.jpg": (1024, 1024, 3, (90, 60, 120)),
        "noon.jpg": (1024, 1024, 2, (200, 140, 60)),
        "night.jpg": (512, 512, 4, (60, 30, 20)),
    }
    for name, (width, height, seed, sky) in samples.items():
        cv2.imwrite(
            str(HERE / name), scene(width, height, seed, sky), [cv2.IMWRITE_JPEG_QUALITY, 88]
        )


if __name__ == "__main__":
    main()
