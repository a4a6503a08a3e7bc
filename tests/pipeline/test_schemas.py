from __future__ import annotations

import re

import jsonschema_rs
import pytest

from pipeline import (
    OPERATIONS,
    InvalidOperation,
    encode_options_schema,
    operation_schemas,
    parse_operations,
)

GOOD = [
    {"op": "resize", "factor": 2},
    {"op": "resize", "width": 800},
    {"op": "resize", "width": 800, "height": 600},
    {"op": "split"},
    {"op": "splitQuadrants", "enabled": False},
    {"op": "blur", "kernel": 25},
    {"op": "blur", "kernel": 0, "sigma": 2.5},
    {"op": "crop", "x": 10, "y": 20, "width": 300, "height": 200},
    {"op": "rotate", "degrees": 90},
    {"op": "flip", "direction": "vertical"},
    {"op": "grayscale"},
    {"op": "sharpen", "amount": 1.5},
]
BAD = [
    {"op": "resize"},
    {"op": "resize", "factor": 0.01},
    {"op": "resize", "factor": 2, "width": 3},
    {"op": "resize", "factr": 2},
    {"op": "resize", "width": 2.5},
    {"op": "split", "enabled": "yes"},
    {"op": "blur", "kernel": 24},
    {"op": "blur", "kernel": 257},
    {"op": "crop", "x": 10, "y": 20, "width": 300},
    {"op": "rotate", "degrees": 45},
    {"op": "flip", "direction": "diagonal"},
    {"op": "sharpen", "amount": 11},
    {"op": "Resize", "factor": 2},
]


def validators() -> list[object]:
    return [jsonschema_rs.Draft202012Validator(schema) for schema in operation_schemas()]


def test_there_is_a_valid_schema_per_operation_and_one_for_the_string_form() -> None:
    schemas = operation_schemas()
    assert [schema["title"] for schema in schemas] == [
        "ResizeOperation", "SplitOperation", "BlurOperation", "CropOperation",
        "RotateOperation", "FlipOperation", "GrayscaleOperation", "SharpenOperation",
        "OperationString",
    ]  # fmt: skip
    assert all(jsonschema_rs.meta.is_valid(schema) for schema in schemas)
    assert jsonschema_rs.meta.is_valid(encode_options_schema())


def test_schemas_come_from_the_declarations() -> None:
    resize, split = operation_schemas()[:2]
    assert resize["properties"]["factor"] == {  # type: ignore[index]
        "type": "number", "minimum": 0.05, "maximum": 100,
        "description": "Scale both sides by this factor.",
    }  # fmt: skip
    assert split["properties"]["op"] == {"type": "string", "enum": ["split", "splitQuadrants"]}  # type: ignore[index]
    assert all(schema["additionalProperties"] is False for schema in operation_schemas()[:-1])


@pytest.mark.parametrize("item", GOOD, ids=lambda item: str(item))
def test_a_good_object_matches_exactly_one_schema_as_it_and_its_normal_form(
    item: dict[str, object],
) -> None:
    normalized = parse_operations([item]).to_json()[0]
    for instance in (item, normalized):
        assert sum(validator.is_valid(instance) for validator in validators()) == 1  # type: ignore[attr-defined]


@pytest.mark.parametrize("item", BAD, ids=lambda item: str(item))
def test_a_bad_object_matches_no_schema_as_the_parser_refuses_it(item: dict[str, object]) -> None:
    assert not any(validator.is_valid(item) for validator in validators())  # type: ignore[attr-defined]
    with pytest.raises(InvalidOperation):
        parse_operations([item])


def test_the_string_schema_admits_every_documented_string_form() -> None:
    schema = operation_schemas()[-1]
    pattern = re.compile(str(schema["pattern"]))
    forms = [form for operation in OPERATIONS for form in operation.string_forms]
    assert schema["examples"] == forms
    assert all(pattern.match(form) for form in forms)
    assert all(parse_operations([form]) for form in forms)
    assert not pattern.match("foo=1")
    assert not pattern.match("resized=2")


@pytest.mark.parametrize(
    ("text", "valid"),
    [("split", True), ("splitQuadrants=True", True), ("grayscale", True), ("blur", True), ("resize=2", True),
     ("resize", False), ("crop", False), ("flip", False), ("rotate", False), ("split =", False)],
)  # fmt: skip
def test_the_string_schema_agrees_with_the_parser_on_bare_names(text: str, valid: bool) -> None:
    pattern = re.compile(str(operation_schemas()[-1]["pattern"]))
    assert bool(pattern.match(text)) is valid
    try:
        parse_operations([text])
        parsed = True
    except InvalidOperation:
        parsed = False
    assert parsed is valid


def test_the_blur_schema_refuses_sigma_0_without_a_kernel_as_the_parser_does() -> None:
    blur = next(s for s in operation_schemas() if s.get("title") == "BlurOperation")
    validator = jsonschema_rs.validator_for(blur)
    assert not validator.is_valid({"op": "blur", "sigma": 0})
    assert validator.is_valid({"op": "blur", "sigma": 0, "kernel": 3})
    assert validator.is_valid({"op": "blur", "sigma": 2})
