"""Faithful images through the whole service: alpha kept, damaged data failed with its sentence."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tests.pipeline.test_alpha import rgba_png
from tests.pipeline.test_damaged import corrupt_entropy_jpeg
from tests.system.service import Service

pytestmark = pytest.mark.slow


def test_alpha_survives_the_service_and_a_corrupt_jpeg_fails_alone(
    embedded_service: Service,
) -> None:
    service = embedded_service
    (service.root / "photos" / "disc.png").write_bytes(rgba_png())
    (service.root / "photos" / "noise.jpg").write_bytes(corrupt_entropy_jpeg())
    images = [
        {"input": "photos/disc.png", "output": "out/disc.webp"},
        {"input": "photos/noise.jpg", "output": "out/noise.png"},
        {"input": "photos/cyclo1.jpg", "output": "out/photo.jpg"},
    ]
    job = service.finish(service.submit(images, ["resize=0.5"])["id"])
    assert job["state"] == "partially_failed"
    disc, noise, photo = job["images"]
    assert disc["state"] == "succeeded" and photo["state"] == "succeeded"
    kept = cv2.imread(str(service.root / "out/disc.webp"), cv2.IMREAD_UNCHANGED)
    assert kept.shape == (32, 32, 4) and kept[0, 0, 3] == 0 and kept[16, 16, 3] == 255
    assert noise["state"] == "failed" and noise["outputs"] == []
    assert noise["error"] == (
        "noise.jpg cannot be decoded: its JPEG data is damaged"
        " (Corrupt JPEG data: 205 extraneous bytes before marker 0xd9)"
    )
    assert not (service.root / "out/noise.png").exists()
    assert np.count_nonzero(kept[..., 3]) > 100
