"""Real jobs through real processes, on Redis and on the embedded default."""

from __future__ import annotations

import re
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import requests

import pipeline
from tests.system.service import Service

pytestmark = pytest.mark.slow

SEED_CHAIN = ["splitQuadrants=True", "resize=2", "splitQuadrants=True", "resize=2"]


def quadrants(size: tuple[int, int]) -> list[tuple[int, int]]:
    """Return the sizes of an image's quadrants: TL, TR, BL, BR."""
    w, h = size
    return [(w // 2, h // 2), (w - w // 2, h // 2), (w // 2, h - h // 2), (w - w // 2, h - h // 2)]


def doubled(size: tuple[int, int]) -> tuple[int, int]:
    """Return the size after resize=2."""
    return size[0] * 2, size[1] * 2


def seed_chain_sizes(size: tuple[int, int]) -> list[tuple[int, int]]:
    """Return the output sizes of SEED_CHAIN, in output order."""
    return [doubled(q) for first in quadrants(size) for q in quadrants(doubled(first))]


def size_of(path: Path) -> tuple[int, int]:
    """Return an image file's width and height."""
    image = cv2.imread(str(path))
    assert image is not None, path
    return image.shape[1], image.shape[0]


def test_the_seed_photos_go_through_the_seed_chain(service: Service, tmp_path: Path) -> None:
    photos = sorted((service.root / "photos").glob("*.jpg"))
    images = [{"input": f"photos/{p.name}", "output": f"out/{p.stem}.jpg"} for p in photos]
    job = service.finish(service.submit(images, SEED_CHAIN)["id"])
    assert job["state"] == "succeeded", job
    assert job["progress"] == {"total": 4, "done": 4, "failed": 0, "cancelled": 0, "percent": 100.0}
    chain = pipeline.parse_operations(SEED_CHAIN)
    for photo, image in zip(photos, job["images"], strict=True):
        assert image["state"] == "succeeded" and image["error"] is None
        assert image["outputs"] == [f"out/{photo.stem}_{n}.jpg" for n in range(1, 17)]
        sizes = [size_of(service.root / output) for output in image["outputs"]]
        assert sizes == seed_chain_sizes(size_of(photo))
        direct = pipeline.process_image(photo, tmp_path / f"{photo.stem}.jpg", chain)
        for output, expected in zip(image["outputs"], direct, strict=True):
            got = cv2.imread(str(service.root / output))
            assert np.array_equal(got, cv2.imread(str(expected))), output
    assert job["started_at"] <= job["finished_at"]


def test_split_outputs_tile_back_into_the_original(service: Service) -> None:
    job = service.finish(
        service.submit([{"input": "photos/cyclo1.jpg", "output": "tiles/t.png"}], ["split"])["id"]
    )
    assert job["state"] == "succeeded"
    tl, tr, bl, br = (cv2.imread(str(service.root / o)) for o in job["images"][0]["outputs"])
    tiled = np.vstack([np.hstack([tl, tr]), np.hstack([bl, br])])
    assert np.array_equal(tiled, cv2.imread(str(service.root / "photos/cyclo1.jpg")))


def test_a_bad_image_fails_alone_and_the_job_is_partially_failed(service: Service) -> None:
    (service.root / "photos" / "broken.jpg").write_bytes(
        (service.root / "photos" / "cyclo1.jpg").read_bytes()[:5000]
    )
    job = service.finish(
        service.submit(
            [
                {"input": "photos/cyclo2.jpg", "output": "ok.png"},
                {"input": "photos/broken.jpg", "output": "broken.png"},
            ],
            ["resize=0.25"],
        )["id"]
    )
    assert job["state"] == "partially_failed"
    good, bad = job["images"]
    assert good["state"] == "succeeded" and size_of(service.root / "ok.png") == (256, 256)
    assert bad["state"] == "failed" and bad["outputs"] == []
    assert bad["error"] is not None and "truncated" in bad["error"]
    assert not (service.root / "broken.png").exists()


def test_progress_rises_and_cancel_stops_the_rest(service: Service) -> None:
    images = [
        {"input": f"photos/cyclo{1 + n % 4}.jpg", "output": f"slow/{n}.jpg"} for n in range(40)
    ]
    job_id = service.submit(images, ["resize=2", "blur=101"])["id"]
    seen: list[float] = []
    job = service.wait_until(job_id, lambda j: j["progress"]["done"] >= 3)
    seen.append(job["progress"]["percent"])
    job = service.wait_until(job_id, lambda j: j["progress"]["percent"] > seen[-1])
    seen.append(job["progress"]["percent"])
    assert 0 < seen[0] < seen[1] < 100
    response = requests.delete(f"{service.url}/jobs/{job_id}", timeout=10)
    assert response.status_code == 200 and response.json()["state"] == "cancelled"
    job = service.finish(job_id)
    assert job["state"] == "cancelled"
    states = [image["state"] for image in job["images"]]
    assert states.count("cancelled") >= 20, states
    assert set(states) <= {"succeeded", "cancelled"}
    for n, image in enumerate(job["images"]):
        exists = (service.root / f"slow/{n}.jpg").exists()
        assert exists == (image["state"] == "succeeded"), (n, image)
    time.sleep(1)  # a late task of a cancelled job must not write anything
    assert len(list((service.root / "slow").iterdir())) == states.count("succeeded")


def test_a_small_job_does_not_wait_for_a_large_batch(service: Service) -> None:
    batch = [
        {"input": f"photos/cyclo{1 + n % 4}.jpg", "output": f"batch/{n}.jpg"} for n in range(40)
    ]
    large = service.submit(batch, ["resize=2", "blur=101"])
    service.wait_until(large["id"], lambda j: j["progress"]["done"] >= 2)
    small = service.submit([{"input": "photos/cyclo4.jpg", "output": "small.jpg"}], ["resize=0.5"])
    small_done = service.finish(small["id"])
    large_then = service.get(large["id"])
    large_done = service.finish(large["id"], timeout=300)
    assert small_done["state"] == large_done["state"] == "succeeded"
    assert large_then["state"] == "running", "the small job waited for the whole batch"
    assert large_then["progress"]["done"] <= 20, large_then["progress"]


def test_cheap_images_are_grouped_into_fewer_tasks_each_image_still_its_own(
    service: Service,
) -> None:
    small = np.full((64, 48, 3), (10, 120, 240), np.uint8)
    assert cv2.imwrite(str(service.root / "small.png"), small)
    images = [{"input": "small.png", "output": f"many/{n}.png"} for n in range(120)]
    job = service.finish(service.submit(images, ["resize=0.5"])["id"])
    assert job["state"] == "succeeded" and job["progress"]["done"] == 120
    for n in range(120):
        out = cv2.imread(str(service.root / f"many/{n}.png"))
        assert out.shape == (32, 24, 3) and tuple(out[5, 5]) == (10, 120, 240)
    # The worker logs one line a task: "job <id> image 3: run ..." or "images 8-19: ...".
    log = "\n".join(path.read_text(errors="replace") for path in service.logs)
    ranges = [
        range(int(first), int(last or first) + 1)
        for first, last in re.findall(rf"job {job['id']} images? (\d+)(?:-(\d+))?:", log)
    ]
    assert sorted(n for batch in ranges for n in batch) == list(range(120))
    assert len(ranges) < 60, f"{len(ranges)} tasks for 120 images of 64x48"


@pytest.mark.parametrize("chunked", [False, True])
def test_the_real_server_refuses_a_huge_body_with_413_and_keeps_serving(
    redis_service: Service, chunked: bool
) -> None:
    body = b" " * (8 * 1024 * 1024)
    data = iter([body[i : i + 65536] for i in range(0, len(body), 65536)]) if chunked else body
    response = requests.post(
        f"{redis_service.url}/jobs",
        data=data,
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 413
    assert requests.get(f"{redis_service.url}/healthz", timeout=10).status_code == 200
