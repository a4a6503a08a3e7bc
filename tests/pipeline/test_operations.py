from __future__ import annotations

import cv2
import numpy as np
import pytest

from pipeline import OPERATIONS
from pipeline.operation import PlanError
from pipeline.operations.blur import gaussian_blur
from pipeline.operations.crop import crop
from pipeline.operations.flip import flip
from pipeline.operations.grayscale import grayscale
from pipeline.operations.resize import resize, resize_to, target_size
from pipeline.operations.rotate import rotate
from pipeline.operations.sharpen import sharpen
from pipeline.operations.split import split_quadrants


def noise(rows: int, cols: int) -> np.ndarray:
    return np.random.default_rng(rows * 1000 + cols).integers(0, 256, (rows, cols, 3), np.uint8)


@pytest.mark.parametrize(("rows", "cols"), [(2, 2), (2, 3), (3, 2), (5, 7), (8, 6), (23, 37)])
def test_quadrants_tile_back_into_the_original(rows: int, cols: int) -> None:
    picture = noise(rows, cols)
    top_left, top_right, bottom_left, bottom_right = split_quadrants(picture)
    tiled = np.vstack([np.hstack([top_left, top_right]), np.hstack([bottom_left, bottom_right])])
    assert np.array_equal(tiled, picture)
    assert top_left.shape[:2] == (rows // 2, cols // 2)
    assert bottom_right.shape[:2] == (rows - rows // 2, cols - cols // 2)


def test_quadrants_are_views_not_copies(image: np.ndarray) -> None:
    for quadrant in split_quadrants(image):
        assert quadrant.base is image
        assert np.shares_memory(quadrant, image)


def test_a_disabled_split_returns_the_image_itself(image: np.ndarray) -> None:
    assert split_quadrants(image, enabled=False)[0] is image


@pytest.mark.parametrize(
    ("size", "params", "expected"),
    [
        ((37, 23), {"factor": 2}, (74, 46)),
        ((37, 23), {"factor": 0.5}, (18, 12)),  # Python's round: 18.5 -> 18, 11.5 -> 12
        ((1024, 754), {"factor": 0.1}, (102, 75)),
        ((1024, 754), {"factor": 1.5}, (1536, 1131)),
        ((10, 10), {"factor": 0.05}, (1, 1)),  # never below one pixel
        ((37, 23), {"width": 10}, (10, 6)),
        ((37, 23), {"height": 5}, (8, 5)),
        ((37, 23), {"width": 1, "height": 99}, (1, 99)),
        ((1000, 1), {"width": 10}, (10, 1)),
    ],
)
def test_resize_sizes_are_exact(
    size: tuple[int, int], params: dict[str, float], expected: tuple[int, int]
) -> None:
    assert target_size(size, **params) == expected
    resized = resize(np.zeros((size[1], size[0], 3), np.uint8), **params)
    assert resized.shape == (expected[1], expected[0], 3)


@pytest.mark.parametrize("size", [(5, 3), (74, 46), (37, 23), (100, 2)])
def test_resizing_a_constant_image_keeps_it_constant(size: tuple[int, int]) -> None:
    constant = np.full((23, 37, 3), (10, 200, 77), np.uint8)
    resized = resize_to(constant, size)
    assert np.array_equal(resized, np.full((size[1], size[0], 3), (10, 200, 77), np.uint8))


def test_resizing_to_the_same_size_returns_the_image_itself(image: np.ndarray) -> None:
    assert resize_to(image, (37, 23)) is image


def test_resize_uses_area_to_shrink_and_cubic_to_enlarge(image: np.ndarray) -> None:
    area = cv2.resize(image, (18, 11), interpolation=cv2.INTER_AREA)
    cubic = cv2.resize(image, (74, 46), interpolation=cv2.INTER_CUBIC)
    assert np.array_equal(resize_to(image, (18, 11)), area)
    assert np.array_equal(resize_to(image, (74, 46)), cubic)


@pytest.mark.parametrize(("kernel", "sigma"), [(25, 0.0), (0, 4.0), (3, 0.0), (255, 0.0), (5, 2.5)])
def test_blur_of_a_constant_image_is_that_image(kernel: int, sigma: float) -> None:
    constant = np.full((40, 30, 3), (3, 140, 251), np.uint8)
    assert np.array_equal(gaussian_blur(constant, kernel=kernel, sigma=sigma), constant)


def test_blur_with_kernel_1_changes_nothing(image: np.ndarray) -> None:
    assert np.array_equal(gaussian_blur(image, kernel=1, sigma=0.0), image)


def test_blur_smooths_noise_and_keeps_its_mean(image: np.ndarray) -> None:
    blurred = gaussian_blur(image, kernel=0, sigma=4.0)
    assert blurred.std() < image.std() / 3
    assert abs(float(blurred.mean()) - float(image.mean())) < 3


def test_four_quarter_turns_give_back_the_image(image: np.ndarray) -> None:
    turned = image
    for _ in range(4):
        turned = rotate(turned, degrees=90)
    assert np.array_equal(turned, image)


@pytest.mark.parametrize(("degrees", "numpy_turns"), [(90, -1), (180, 2), (270, 1)])
def test_rotate_turns_clockwise(image: np.ndarray, degrees: int, numpy_turns: int) -> None:
    assert np.array_equal(rotate(image, degrees=degrees), np.rot90(image, numpy_turns))


def test_flip_mirrors_and_twice_gives_back_the_image(image: np.ndarray) -> None:
    assert np.array_equal(flip(image, direction="horizontal"), image[:, ::-1])
    assert np.array_equal(flip(image, direction="vertical"), image[::-1])
    twice = flip(flip(image, direction="vertical"), direction="vertical")
    assert np.array_equal(twice, image)


def test_crop_is_a_view_of_the_rectangle(image: np.ndarray) -> None:
    cropped = crop(image, x=3, y=4, width=10, height=5)
    assert np.array_equal(cropped, image[4:9, 3:13])
    assert cropped.base is image


def test_crop_of_the_whole_image_is_the_image(image: np.ndarray) -> None:
    assert np.array_equal(crop(image, x=0, y=0, width=37, height=23), image)


def test_crop_refuses_a_rectangle_outside_the_image(image: np.ndarray) -> None:
    with pytest.raises(PlanError, match=r"^crop 10x5 at x=30, y=0 does not fit the 37x23 image"):
        crop(image, x=30, y=0, width=10, height=5)


def test_grayscale_makes_one_channel_by_the_usual_weights() -> None:
    colors = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [90, 90, 90]]], np.uint8)
    gray = grayscale(colors)
    assert gray.shape == (1, 4)
    assert gray.tolist() == [[29, 150, 76, 90]]  # 0.114 B, 0.587 G, 0.299 R


def test_grayscale_of_a_gray_image_or_disabled_is_the_image_itself(image: np.ndarray) -> None:
    gray = grayscale(image)
    assert grayscale(gray) is gray
    assert grayscale(image, enabled=False) is image


def test_sharpen_leaves_a_constant_image_alone() -> None:
    constant = np.full((20, 20, 3), 77, np.uint8)
    assert np.array_equal(sharpen(constant, amount=10.0, sigma=3.0), constant)


def test_sharpen_by_zero_changes_nothing(image: np.ndarray) -> None:
    assert np.array_equal(sharpen(image, amount=0.0, sigma=1.0), image)


def test_sharpen_steepens_an_edge() -> None:
    edge = np.zeros((10, 20, 3), np.uint8)
    edge[:, 10:] = 200
    soft = cv2.GaussianBlur(edge, (0, 0), 1.0)
    sharpened = sharpen(soft, amount=1.0, sigma=1.0)
    assert (
        np.abs(np.diff(sharpened[5, :, 0].astype(int))).max()
        > np.abs(np.diff(soft[5, :, 0].astype(int))).max()
    )
    assert sharpened[5, 9, 0] < soft[5, 9, 0] and sharpened[5, 10, 0] > soft[5, 10, 0]


def test_every_operation_has_a_one_line_description_and_a_string_form() -> None:
    names = [name for op in OPERATIONS for name in (op.name, *op.aliases)]
    assert len(names) == len(set(names))
    for operation in OPERATIONS:
        assert "\n" not in operation.description and operation.description.endswith(".")
        assert operation.string_forms
        assert all(
            form.split("=")[0] in (operation.name, *operation.aliases)
            for form in operation.string_forms
        )
