from __future__ import annotations

from pathlib import Path

import pytest

from pipeline import (
    InvalidOperation,
    Limits,
    Problem,
    parse_operations,
    plan_sizes,
    probe_size,
    process_image,
)

SEED_CHAINS = [
    ["split", "resize=2", "split", "resize=2"],
    ["resize=0.5"],
    ["resize=0.1"],
    ["blur=25"],
    ["split", "resize=1.5", "blur=25"],
    ["rotate=90", "crop=10,20,300,200", "split", "resize=x100"],
    ["resize=333x", "split", "split", "flip=vertical", "grayscale"],
]


@pytest.mark.parametrize(
    ("items", "size", "expected"),
    [
        ([], (37, 23), [(37, 23)]),
        (["split"], (37, 23), [(18, 11), (19, 11), (18, 12), (19, 12)]),
        (["split=false"], (37, 23), [(37, 23)]),
        (["split", "split"], (5, 5), [(1, 1), (1, 1), (1, 1), (1, 1), (1, 1), (2, 1), (1, 1), (2, 1),
                                     (1, 1), (1, 1), (1, 2), (1, 2), (1, 1), (2, 1), (1, 2), (2, 2)]),
        (["resize=2", "split"], (3, 3), [(3, 3), (3, 3), (3, 3), (3, 3)]),
        (["split", "resize=2"], (3, 3), [(2, 2), (4, 2), (2, 4), (4, 4)]),
        (["rotate=90"], (37, 23), [(23, 37)]),
        (["rotate=180"], (37, 23), [(37, 23)]),
        (["crop=1,2,3,4", "rotate=270"], (37, 23), [(4, 3)]),
        (["resize=x46"], (37, 23), [(74, 46)]),
        (["blur=25", "sharpen", "flip=horizontal", "grayscale"], (37, 23), [(37, 23)]),
    ],
)  # fmt: skip
def test_plan_sizes_gives_every_output_size_in_output_order(
    items: list[object], size: tuple[int, int], expected: list[tuple[int, int]]
) -> None:
    assert plan_sizes(parse_operations(items), *size) == expected


def test_a_resize_over_the_pixel_limit_points_at_its_step() -> None:
    chain = parse_operations(["rotate=180", "flip=horizontal", "resize=100"])
    with pytest.raises(InvalidOperation) as caught:
        plan_sizes(chain, 1024, 754)
    assert caught.value.problems == [
        Problem(
            "/operations/2",
            "resize factor 100 would make a 102400x75400 image (7721 megapixels);"
            " the limit is 100 megapixels",
        )
    ]


def test_the_pixel_limit_applies_to_every_image_after_a_split() -> None:
    chain = parse_operations(["split", {"op": "resize", "width": 30000, "height": 4000}])
    with pytest.raises(InvalidOperation) as caught:
        plan_sizes(chain, 100, 100, pointer="/images/1/operations")
    assert caught.value.problems == [
        Problem(
            "/images/1/operations/1",
            "resize width 30000 height 4000 would make a 30000x4000 image (120 megapixels);"
            " the limit is 100 megapixels",
        )
    ]
    assert plan_sizes(chain, 100, 100, limits=Limits(max_pixels=120_000_000))[0] == (30000, 4000)


def test_a_crop_that_does_not_fit_the_image_it_gets_points_at_its_step() -> None:
    chain = parse_operations(["split", "crop=0,0,600,300"])
    with pytest.raises(InvalidOperation) as caught:
        plan_sizes(chain, 1024, 754)
    assert caught.value.problems == [
        Problem("/operations/1", "crop 600x300 at x=0, y=0 does not fit the 512x377 image it gets")
    ]


def test_a_split_needs_two_pixels_each_way() -> None:
    with pytest.raises(InvalidOperation) as caught:
        plan_sizes(parse_operations(["split", "split"]), 3, 2)
    assert caught.value.problems == [
        Problem("/operations/1", "split needs an image of at least 2x2 pixels; it gets 1x1")
    ]


def test_plan_sizes_applies_the_chain_limits_it_is_given() -> None:
    chain = parse_operations(["split", "split", "split"])
    with pytest.raises(InvalidOperation) as caught:
        plan_sizes(chain, 100, 100, limits=Limits(max_outputs=16))
    assert caught.value.problems == [
        Problem("/operations/2", "3 splits would make 64 outputs per image; the limit is 16")
    ]


@pytest.mark.parametrize("items", SEED_CHAINS)
def test_plan_sizes_agrees_with_the_sizes_process_image_writes(
    photo: Path, tmp_path: Path, items: list[object]
) -> None:
    chain = parse_operations(items)
    written = process_image(photo, tmp_path / "out.jpg", chain)
    assert [probe_size(path) for path in written] == plan_sizes(chain, *probe_size(photo))
