from __future__ import annotations

import pytest

from pipeline import Chain, InvalidOperation, Limits, Problem, Step, parse_operations

KNOWN = "blur, crop, flip, grayscale, resize, rotate, sharpen, split, splitQuadrants"
WORDS = "True, true, 1, yes, False, false, None, 0, no"


@pytest.mark.parametrize(
    ("item", "normalized"),
    [
        ("resize=2", {"op": "resize", "factor": 2.0}),
        ("resize=0.05", {"op": "resize", "factor": 0.05}),
        (" resize = 1e1 ", {"op": "resize", "factor": 10.0}),
        ("resize=800x600", {"op": "resize", "width": 800, "height": 600}),
        ("resize=800x", {"op": "resize", "width": 800}),
        ("resize=x600", {"op": "resize", "height": 600}),
        ({"op": "resize", "factor": 2}, {"op": "resize", "factor": 2.0}),
        ({"op": "resize", "width": 800.0}, {"op": "resize", "width": 800}),
        ({"op": "resize", "height": 10, "width": 20}, {"op": "resize", "width": 20, "height": 10}),
        ("split", {"op": "split", "enabled": True}),
        *((f"split={word}", {"op": "split", "enabled": True}) for word in ("True", "true", "1", "yes")),
        *((f"splitQuadrants={word}", {"op": "split", "enabled": False}) for word in ("False", "false", "None", "0", "no")),
        ({"op": "split"}, {"op": "split", "enabled": True}),
        ({"op": "splitQuadrants", "enabled": False}, {"op": "split", "enabled": False}),
        ("blur=25", {"op": "blur", "kernel": 25, "sigma": 0.0}),
        ("blur=0", {"op": "blur", "kernel": 0, "sigma": 4.0}),
        ("blur=0,2.5", {"op": "blur", "kernel": 0, "sigma": 2.5}),
        ("blur=25,3", {"op": "blur", "kernel": 25, "sigma": 3.0}),
        ("blur", {"op": "blur", "kernel": 0, "sigma": 4.0}),
        ({"op": "blur"}, {"op": "blur", "kernel": 0, "sigma": 4.0}),
        ({"op": "blur", "kernel": 0, "sigma": 2.5}, {"op": "blur", "kernel": 0, "sigma": 2.5}),
        ({"op": "blur", "sigma": 1}, {"op": "blur", "kernel": 0, "sigma": 1.0}),
        ("crop=10,20,300,200", {"op": "crop", "x": 10, "y": 20, "width": 300, "height": 200}),
        ({"op": "crop", "x": 0, "y": 0, "width": 1, "height": 1}, {"op": "crop", "x": 0, "y": 0, "width": 1, "height": 1}),
        ("rotate=90", {"op": "rotate", "degrees": 90}),
        ({"op": "rotate", "degrees": 270}, {"op": "rotate", "degrees": 270}),
        ("flip=horizontal", {"op": "flip", "direction": "horizontal"}),
        ({"op": "flip", "direction": "vertical"}, {"op": "flip", "direction": "vertical"}),
        ("grayscale", {"op": "grayscale", "enabled": True}),
        ("grayscale=true", {"op": "grayscale", "enabled": True}),
        ("grayscale=no", {"op": "grayscale", "enabled": False}),
        ("sharpen", {"op": "sharpen", "amount": 1.0, "sigma": 1.0}),
        ("sharpen=1.5", {"op": "sharpen", "amount": 1.5, "sigma": 1.0}),
        ("sharpen=1.5,2", {"op": "sharpen", "amount": 1.5, "sigma": 2.0}),
        ({"op": "sharpen", "amount": 0}, {"op": "sharpen", "amount": 0.0, "sigma": 1.0}),
    ],
)  # fmt: skip
def test_an_item_normalizes_to_its_object_form(item: object, normalized: dict[str, object]) -> None:
    chain = parse_operations([item])
    assert chain.to_json() == [normalized]
    assert [type(value) for value in chain.to_json()[0].values()] == [
        type(value) for value in normalized.values()
    ]


@pytest.mark.parametrize(
    ("item", "pointer", "detail"),
    [
        ("resize=-0.5", "", "resize factor -0.5 is not in the range 0.05 <= factor <= 100"),
        ("resize=1.5e3", "", "resize factor 1.5e3 is not in the range 0.05 <= factor <= 100"),
        ("resize=nan", "", "resize factor nan is not a finite number"),
        ("resize=inf", "", "resize factor inf is not a finite number"),
        ("resize=two", "", "resize factor 'two' is not a number"),
        ("resize=0x600", "", "resize width 0 is not in the range 1 <= width <= 65535"),
        ("resize=x", "", "resize needs a factor, or a width and/or height"),
        ("resize", "", "resize needs a factor, or a width and/or height"),
        ("resize=", "", "resize needs a value after '=', as in 'resize=0.5'"),
        ("split=maybe", "", f"split enabled 'maybe' is not a boolean; use one of {WORDS}"),
        ("splitQuadrants=Y", "", f"splitQuadrants enabled 'Y' is not a boolean; use one of {WORDS}"),
        ("blur=24", "", "blur kernel 24 must be odd (or 0 to derive it from sigma)"),
        ("blur=257", "", "blur kernel 257 is not in the range 0 <= kernel <= 255"),
        ("blur=0,0", "", "blur needs a kernel above 0 or a sigma above 0"),
        ("blur=0,101", "", "blur sigma 101 is not in the range 0 <= sigma <= 100"),
        ("blur=1,2,3", "", "blur takes at most 2 comma-separated values (kernel, sigma), not 3"),
        ("crop=10,20,300", "", "crop is missing 'height'"),
        ("crop=10,,300,200", "", "crop y '' is not a number"),
        ("crop=-1,0,1,1", "", "crop x -1 is not in the range 0 <= x <= 65534"),
        ("crop=0,0,0,1", "", "crop width 0 is not in the range 1 <= width <= 65535"),
        ("rotate=45", "", "rotate degrees 45 is not one of 90, 180, 270"),
        ("rotate", "", "rotate is missing 'degrees'"),
        ("flip=diagonal", "", "flip direction 'diagonal' is not one of 'horizontal', 'vertical'"),
        ("flip", "", "flip is missing 'direction'"),
        ("sharpen=11", "", "sharpen amount 11 is not in the range 0 <= amount <= 10"),
        ("sharpen=1,0", "", "sharpen sigma 0 is not in the range 0.1 <= sigma <= 50"),
        ("Resize=2", "", f"unknown operation 'Resize'; the known ones are {KNOWN}"),
        ("=2", "", f"unknown operation ''; the known ones are {KNOWN}"),
        ("resize=" + "1" * 100, "", "an operation string may have at most 100 characters; this one has 107"),
        ({"op": "resize", "factor": -0.5}, "/factor", "resize factor -0.5 is not in the range 0.05 <= factor <= 100"),
        ({"op": "resize", "factor": True}, "/factor", "resize factor must be a number, not a boolean (true)"),
        ({"op": "resize", "factor": "2"}, "/factor", "resize factor must be a number, not a string ('2')"),
        ({"op": "resize", "factor": float("nan")}, "/factor", "resize factor nan is not a finite number"),
        ({"op": "resize", "factor": float("inf")}, "/factor", "resize factor inf is not a finite number"),
        ({"op": "resize", "width": 2.5}, "/width", "resize width 2.5 is not an integer"),
        ({"op": "resize", "width": False}, "/width", "resize width must be an integer, not a boolean (false)"),
        ({"op": "resize", "factor": 2, "width": 3}, "", "resize takes a factor or a width and/or height, not both"),
        ({"op": "resize"}, "", "resize needs a factor, or a width and/or height"),
        ({"op": "resize", "factr": 2}, "/factr", "resize has no parameter 'factr'; its parameters are factor, width, height"),
        ({"op": "resize", "a/b~c": 2}, "/a~1b~0c", "resize has no parameter 'a/b~c'; its parameters are factor, width, height"),
        ({"op": "blur", "kernel": 24}, "/kernel", "blur kernel 24 must be odd (or 0 to derive it from sigma)"),
        ({"op": "blur", "kernel": 0, "sigma": 0}, "/sigma", "blur needs a kernel above 0 or a sigma above 0"),
        ({"op": "split", "enabled": "yes"}, "/enabled", "split enabled must be true or false, not a string ('yes')"),
        ({"op": "crop", "x": 1, "y": 2, "width": 3}, "", "crop is missing 'height'"),
        ({"op": "rotate", "degrees": "90"}, "/degrees", "rotate degrees must be one of 90, 180, 270, not a string ('90')"),
        ({"op": "nope"}, "/op", f"unknown operation 'nope'; the known ones are {KNOWN}"),
        ({"op": 7}, "/op", "op must be a string, not a number (7)"),
        ({"factor": 2}, "", 'an operation object needs an "op" member naming the operation'),
        (42, "", 'an operation must be a string such as "resize=2" or an object such as {"op": "resize", "factor": 2}, not a number (42)'),
        (None, "", 'an operation must be a string such as "resize=2" or an object such as {"op": "resize", "factor": 2}, not null'),
        (["resize", 2], "", 'an operation must be a string such as "resize=2" or an object such as {"op": "resize", "factor": 2}, not an array'),
    ],
)  # fmt: skip
def test_a_bad_item_is_refused_with_a_pointer_and_a_sentence(
    item: object, pointer: str, detail: str
) -> None:
    with pytest.raises(InvalidOperation) as caught:
        parse_operations(["grayscale", item])
    assert caught.value.problems == [Problem(f"/operations/1{pointer}", detail)]
    assert caught.value.detail == f"/operations/1{pointer}: {detail}"


def test_every_problem_is_listed_with_its_own_pointer() -> None:
    items = [
        "resize=2",
        "resize=-1",
        {"op": "blur", "kernel": 24, "sigma": -1, "extra": 1},
        "rotate=90",
        {"op": "crop"},
        "foo",
    ]
    with pytest.raises(InvalidOperation) as caught:
        parse_operations(items, pointer="/images/2/operations")
    assert caught.value.problems == [
        Problem("/images/2/operations/1", "resize factor -1 is not in the range 0.05 <= factor <= 100"),
        Problem("/images/2/operations/2/kernel", "blur kernel 24 must be odd (or 0 to derive it from sigma)"),
        Problem("/images/2/operations/2/sigma", "blur sigma -1 is not in the range 0 <= sigma <= 100"),
        Problem("/images/2/operations/2/extra", "blur has no parameter 'extra'; its parameters are kernel, sigma"),
        Problem("/images/2/operations/4", "crop is missing 'x'"),
        Problem("/images/2/operations/4", "crop is missing 'y'"),
        Problem("/images/2/operations/4", "crop is missing 'width'"),
        Problem("/images/2/operations/4", "crop is missing 'height'"),
        Problem("/images/2/operations/5", f"unknown operation 'foo'; the known ones are {KNOWN}"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("items", "detail"),
    [
        ({"op": "resize"}, "operations must be a list, not an object"),
        ("resize=2", "operations must be a list, not a string ('resize=2')"),
        (None, "operations must be a list, not null"),
    ],
)
def test_operations_that_are_not_a_list_are_one_problem(items: object, detail: str) -> None:
    with pytest.raises(InvalidOperation) as caught:
        parse_operations(items)
    assert caught.value.problems == [Problem("/operations", detail)]


def test_an_empty_chain_is_valid_and_makes_one_output() -> None:
    chain = parse_operations([])
    assert chain == Chain(())
    assert chain.output_count == 1


def test_a_chain_longer_than_the_limit_is_refused() -> None:
    parse_operations(["grayscale"] * 32)
    with pytest.raises(InvalidOperation) as caught:
        parse_operations(["grayscale"] * 33)
    assert caught.value.problems == [
        Problem("/operations", "the chain has 33 operations; the limit is 32")
    ]
    assert len(parse_operations(["grayscale"] * 40, limits=Limits(max_operations=40))) == 40


def test_four_splits_make_256_outputs_and_a_fifth_is_refused() -> None:
    assert parse_operations(["split"] * 4).output_count == 256
    with pytest.raises(InvalidOperation) as caught:
        parse_operations(["split", "resize=0.5", "split", "split", "split", "split"])
    assert caught.value.problems == [
        Problem("/operations/5", "5 splits would make 1024 outputs per image; the limit is 256")
    ]


def test_the_output_limit_is_configurable_and_disabled_splits_do_not_count() -> None:
    limits = Limits(max_outputs=16)
    chain = parse_operations(["split", "split=false", "split", "split=no"], limits=limits)
    assert chain.output_count == 16
    with pytest.raises(InvalidOperation) as caught:
        parse_operations(["split", "split", "split"], limits=limits)
    assert caught.value.problems == [
        Problem("/operations/2", "3 splits would make 64 outputs per image; the limit is 16")
    ]


def test_a_flood_of_problems_is_cut_short() -> None:
    with pytest.raises(InvalidOperation) as caught:
        parse_operations(["nope"] * 60, limits=Limits(max_operations=60))
    assert len(caught.value.problems) == 51
    assert caught.value.problems[-1] == Problem("/operations", "and 10 more problems")


def test_a_normalized_chain_parses_back_to_an_equal_chain() -> None:
    items = [
        "split",
        "resize=2",
        "splitQuadrants=False",
        {"op": "resize", "width": 640},
        "blur=25",
        {"op": "blur", "sigma": 2},
        "crop=1,2,30,40",
        "rotate=270",
        "flip=vertical",
        "grayscale",
        "sharpen=2,3",
    ]
    chain = parse_operations(items)
    assert parse_operations(chain.to_json()) == chain
    assert chain.output_count == 4
    assert hash(parse_operations(chain.to_json())) == hash(chain)


def test_steps_name_their_operation_canonically_and_describe_themselves() -> None:
    chain = parse_operations(["splitQuadrants=True", "resize=100"])
    assert [step.op for step in chain] == ["split", "resize"]
    assert chain.steps[1] == Step("resize", {"factor": 100.0})
    assert chain.steps[1].describe() == "resize factor 100"
