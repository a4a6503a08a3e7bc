from __future__ import annotations

import pytest

from pipeline.params import Choice, Flag, FloatRange, IntRange, OddInt, ParamError, ParamType, show

FACTOR = FloatRange(0.05, 100)
SIDE = IntRange(1, 65535)
KERNEL = OddInt(255, "derive it from sigma")
DEGREES = Choice((90, 180, 270))
DIRECTION = Choice(("horizontal", "vertical"))


@pytest.mark.parametrize(
    ("declared", "value", "expected"),
    [
        (FACTOR, 0.05, 0.05),
        (FACTOR, 100, 100.0),
        (FACTOR, 2, 2.0),
        (SIDE, 1, 1),
        (SIDE, 65535, 65535),
        (SIDE, 800.0, 800),
        (KERNEL, 0, 0),
        (KERNEL, 1, 1),
        (KERNEL, 255, 255),
        (KERNEL, 25.0, 25),
        (DEGREES, 270, 270),
        (DEGREES, 90.0, 90),
        (DIRECTION, "vertical", "vertical"),
        (Flag(), False, False),
    ],
)
def test_a_declared_type_accepts_good_json_values(
    declared: ParamType, value: object, expected: object
) -> None:
    converted = declared.convert(value, "p")
    assert converted == expected
    assert type(converted) is type(expected)


@pytest.mark.parametrize(
    ("declared", "name", "value", "message"),
    [
        (FACTOR, "factor", -0.5, "factor -0.5 is not in the range 0.05 <= factor <= 100"),
        (FACTOR, "factor", 0.04, "factor 0.04 is not in the range 0.05 <= factor <= 100"),
        (FACTOR, "factor", 1500.0, "factor 1500 is not in the range 0.05 <= factor <= 100"),
        (FACTOR, "factor", 10**30, "factor 1e+30 is not in the range 0.05 <= factor <= 100"),
        (FACTOR, "factor", float("nan"), "factor nan is not a finite number"),
        (FACTOR, "factor", float("inf"), "factor inf is not a finite number"),
        (FACTOR, "factor", float("-inf"), "factor -inf is not a finite number"),
        (FACTOR, "factor", True, "factor must be a number, not a boolean (true)"),
        (FACTOR, "factor", "2", "factor must be a number, not a string ('2')"),
        (FACTOR, "factor", None, "factor must be a number, not null"),
        (FACTOR, "factor", [2], "factor must be a number, not an array"),
        (FACTOR, "factor", {"value": 2}, "factor must be a number, not an object"),
        (SIDE, "width", 0, "width 0 is not in the range 1 <= width <= 65535"),
        (SIDE, "width", 65536, "width 65536 is not in the range 1 <= width <= 65535"),
        (SIDE, "width", 2.5, "width 2.5 is not an integer"),
        (SIDE, "width", False, "width must be an integer, not a boolean (false)"),
        (SIDE, "width", float("nan"), "width nan is not a finite number"),
        (KERNEL, "kernel", 24, "kernel 24 must be odd (or 0 to derive it from sigma)"),
        (KERNEL, "kernel", 2, "kernel 2 must be odd (or 0 to derive it from sigma)"),
        (KERNEL, "kernel", 257, "kernel 257 is not in the range 0 <= kernel <= 255"),
        (KERNEL, "kernel", -1, "kernel -1 is not in the range 0 <= kernel <= 255"),
        (KERNEL, "kernel", 2.5, "kernel 2.5 is not an integer"),
        (DEGREES, "degrees", 45, "degrees 45 is not one of 90, 180, 270"),
        (DEGREES, "degrees", -90, "degrees -90 is not one of 90, 180, 270"),
        (DEGREES, "degrees", "90", "degrees must be one of 90, 180, 270, not a string ('90')"),
        (DEGREES, "degrees", True, "degrees must be one of 90, 180, 270, not a boolean (true)"),
        (
            DIRECTION, "direction", "Horizontal",
            "direction 'Horizontal' is not one of 'horizontal', 'vertical'",
        ),
        (
            DIRECTION, "direction", 1,
            "direction must be one of 'horizontal', 'vertical', not a number (1)",
        ),
        (Flag(), "enabled", "true", "enabled must be true or false, not a string ('true')"),
        (Flag(), "enabled", 1, "enabled must be true or false, not a number (1)"),
        (Flag(), "enabled", None, "enabled must be true or false, not null"),
    ],
)  # fmt: skip
def test_a_declared_type_rejects_bad_json_values_with_a_sentence(
    declared: ParamType, name: str, value: object, message: str
) -> None:
    with pytest.raises(ParamError) as caught:
        declared.convert(value, name)
    assert caught.value.message == message


@pytest.mark.parametrize(
    ("declared", "text", "expected"),
    [
        (FACTOR, "2", 2.0),
        (FACTOR, "1.5", 1.5),
        (FACTOR, ".5", 0.5),
        (FACTOR, "5.", 5.0),
        (FACTOR, "+2", 2.0),
        (FACTOR, "1e1", 10.0),
        (FACTOR, "5E-2", 0.05),
        (KERNEL, "25", 25),
        (KERNEL, "25.0", 25),
        (DEGREES, "180", 180),
        (DIRECTION, "horizontal", "horizontal"),
        *((Flag(), word, True) for word in ("True", "true", "1", "yes")),
        *((Flag(), word, False) for word in ("False", "false", "None", "0", "no")),
    ],
)
def test_a_declared_type_reads_the_string_form(
    declared: ParamType, text: str, expected: object
) -> None:
    assert declared.parse(text, "p") == expected


WORDS = "True, true, 1, yes, False, false, None, 0, no"


@pytest.mark.parametrize(
    ("declared", "name", "text", "message"),
    [
        (FACTOR, "factor", "1.5e3", "factor 1.5e3 is not in the range 0.05 <= factor <= 100"),
        (FACTOR, "factor", "nan", "factor nan is not a finite number"),
        (FACTOR, "factor", "NaN", "factor NaN is not a finite number"),
        (FACTOR, "factor", "inf", "factor inf is not a finite number"),
        (FACTOR, "factor", "-Infinity", "factor -Infinity is not a finite number"),
        (FACTOR, "factor", "1e999", "factor 1e999 is not a finite number"),
        (FACTOR, "factor", "1_0", "factor '1_0' is not a number"),
        (FACTOR, "factor", "0x10", "factor '0x10' is not a number"),
        (FACTOR, "factor", "two", "factor 'two' is not a number"),
        (FACTOR, "factor", "", "factor '' is not a number"),
        (KERNEL, "kernel", "24", "kernel 24 must be odd (or 0 to derive it from sigma)"),
        (KERNEL, "kernel", "2.5", "kernel 2.5 is not an integer"),
        (DEGREES, "degrees", "90.5", "degrees 90.5 is not one of 90, 180, 270"),
        (DIRECTION, "direction", "left", "direction 'left' is not one of 'horizontal', 'vertical'"),
        (Flag(), "enabled", "maybe", f"enabled 'maybe' is not a boolean; use one of {WORDS}"),
        (Flag(), "enabled", "TRUE", f"enabled 'TRUE' is not a boolean; use one of {WORDS}"),
    ],
)  # fmt: skip
def test_a_declared_type_rejects_bad_text_quoting_it_as_written(
    declared: ParamType, name: str, text: str, message: str
) -> None:
    with pytest.raises(ParamError) as caught:
        declared.parse(text, name)
    assert caught.value.message == message


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (True, "true"),
        (None, "null"),
        (2.0, "2"),
        (-0.5, "-0.5"),
        (10**20, "1e+20"),
        (10**400, "a huge integer"),
        ("x" * 50, repr("x" * 40 + "...")),
        ([1, 2], "an array"),
    ],
)
def test_show_renders_a_clients_value_briefly(value: object, shown: str) -> None:
    assert show(value) == shown


def test_schemas_carry_the_declared_bounds() -> None:
    assert FACTOR.schema() == {"type": "number", "minimum": 0.05, "maximum": 100}
    assert SIDE.schema() == {"type": "integer", "minimum": 1, "maximum": 65535}
    assert DEGREES.schema() == {"type": "integer", "enum": [90, 180, 270]}
    assert Flag().schema() == {"type": "boolean"}
    assert KERNEL.schema()["anyOf"] == [{"const": 0}, {"not": {"multipleOf": 2}}]
