"""Declared parameters: types with bounds that convert a value or say why they cannot.

In the manner of click's IntRange and FloatRange, but strict: nothing is clamped or coerced
silently. Messages start with the parameter's name and callers prefix the operation's, giving
sentences such as "resize factor 1.5e3 is not in the range 0.05 <= factor <= 100". The same
declarations give each parameter's JSON Schema.

Values come from JSON (the object form), where booleans, strings and numbers are distinct, or
from the text of the string form ("resize=2"), which each type parses with ``parse``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_INTEGER = re.compile(r"[+-]?\d+")
_NONFINITE = re.compile(r"[+-]?(?:nan|inf|infinity)", re.IGNORECASE)
_SHOWN_LENGTH = 40


class ParamError(ValueError):
    """Raised when a value does not fit its declaration; ``param`` names what to point at."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


def show(value: object) -> str:
    """Render a client's value for a message, briefly and unambiguously."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        if abs(value) < 10**16:
            return str(value)
        return f"{float(value):.3g}" if value.bit_length() < 1000 else "a huge integer"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e16 else repr(value)
    if isinstance(value, str):
        return repr(value if len(value) <= _SHOWN_LENGTH else value[:_SHOWN_LENGTH] + "...")
    return describe(value)


def describe(value: object) -> str:
    """Name a value's JSON type for a message, with the value where it helps."""
    if isinstance(value, bool):
        return f"a boolean ({show(value)})"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return f"a number ({show(value)})"
    if isinstance(value, str):
        return f"a string ({show(value)})"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return f"a {type(value).__name__}"


def _bound(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def _number(value: object, name: str, shown: str | None, kind: str) -> int | float:
    """Check that value is a finite JSON number; kind is "a number" or "an integer"."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ParamError(f"{name} must be {kind}, not {describe(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ParamError(f"{name} {shown or show(value)} is not a finite number")
    return value


def _parse_number(text: str, name: str) -> int | float:
    """Read a number written in the string form, refusing what JSON would refuse."""
    if _NONFINITE.fullmatch(text):
        raise ParamError(f"{name} {text} is not a finite number")
    if _INTEGER.fullmatch(text):
        return int(text)
    if _NUMBER.fullmatch(text):
        return float(text)
    raise ParamError(f"{name} {show(text)} is not a number")


class ParamType(Protocol):
    """Convert and describe the values one parameter accepts."""

    def convert(self, value: object, name: str, shown: str | None = None) -> object: ...

    def parse(self, text: str, name: str) -> object: ...

    def schema(self) -> dict[str, object]: ...


@dataclass(frozen=True)
class IntRange:
    """Accept an integer (or an integral float) from min to max inclusive."""

    min: int
    max: int

    def convert(self, value: object, name: str, shown: str | None = None) -> int:
        """Return value as an int, or raise ParamError."""
        number = _number(value, name, shown, "an integer")
        if isinstance(number, float) and not number.is_integer():
            raise ParamError(f"{name} {shown or show(number)} is not an integer")
        if not self.min <= number <= self.max:
            raise ParamError(
                f"{name} {shown or show(number)} is not in the range"
                f" {self.min} <= {name} <= {self.max}"
            )
        return int(number)

    def parse(self, text: str, name: str) -> int:
        """Read the string form's text as an int, or raise ParamError."""
        return self.convert(_parse_number(text, name), name, text)

    def schema(self) -> dict[str, object]:
        """Return the JSON Schema of the accepted values."""
        return {"type": "integer", "minimum": self.min, "maximum": self.max}


@dataclass(frozen=True)
class FloatRange:
    """Accept a finite number from min to max inclusive, as a float."""

    min: float
    max: float

    def convert(self, value: object, name: str, shown: str | None = None) -> float:
        """Return value as a float, or raise ParamError."""
        number = _number(value, name, shown, "a number")
        if not self.min <= number <= self.max:
            raise ParamError(
                f"{name} {shown or show(number)} is not in the range"
                f" {_bound(self.min)} <= {name} <= {_bound(self.max)}"
            )
        return float(number)

    def parse(self, text: str, name: str) -> float:
        """Read the string form's text as a float, or raise ParamError."""
        return self.convert(_parse_number(text, name), name, text)

    def schema(self) -> dict[str, object]:
        """Return the JSON Schema of the accepted values."""
        return {"type": "number", "minimum": self.min, "maximum": self.max}


@dataclass(frozen=True)
class OddInt:
    """Accept 0 or an odd integer up to max; zero_means says what 0 asks for."""

    max: int
    zero_means: str

    def convert(self, value: object, name: str, shown: str | None = None) -> int:
        """Return value as an int, or raise ParamError."""
        number = IntRange(0, self.max).convert(value, name, shown)
        if number and number % 2 == 0:
            raise ParamError(f"{name} {shown or number} must be odd (or 0 to {self.zero_means})")
        return number

    def parse(self, text: str, name: str) -> int:
        """Read the string form's text as an int, or raise ParamError."""
        return self.convert(_parse_number(text, name), name, text)

    def schema(self) -> dict[str, object]:
        """Return the JSON Schema of the accepted values."""
        odd_or_zero = [{"const": 0}, {"not": {"multipleOf": 2}}]
        return {"type": "integer", "minimum": 0, "maximum": self.max, "anyOf": odd_or_zero}


@dataclass(frozen=True)
class Choice:
    """Accept one of a few strings or integers, exactly as listed."""

    choices: tuple[str, ...] | tuple[int, ...]

    def _listed(self) -> str:
        return ", ".join(show(choice) for choice in self.choices)

    def convert(self, value: object, name: str, shown: str | None = None) -> str | int:
        """Return value if it is one of the choices, or raise ParamError."""
        wants_int = isinstance(self.choices[0], int)
        if isinstance(value, float) and wants_int and value.is_integer():
            value = int(value)
        kind_ok = isinstance(value, int | float) if wants_int else isinstance(value, str)
        if isinstance(value, bool) or not kind_ok:
            raise ParamError(f"{name} must be one of {self._listed()}, not {describe(value)}")
        if value not in self.choices:
            raise ParamError(f"{name} {shown or show(value)} is not one of {self._listed()}")
        assert isinstance(value, str | int)  # a float that is one of the choices is integral
        return value

    def parse(self, text: str, name: str) -> str | int:
        """Read the string form's text as one of the choices, or raise ParamError."""
        if isinstance(self.choices[0], int):
            return self.convert(_parse_number(text, name), name, text)
        return self.convert(text, name)

    def schema(self) -> dict[str, object]:
        """Return the JSON Schema of the accepted values."""
        kind = "integer" if isinstance(self.choices[0], int) else "string"
        return {"type": kind, "enum": list(self.choices)}


_HEX_COLOR = re.compile(r"#[0-9a-fA-F]{6}")


@dataclass(frozen=True)
class HexColor:
    """Accept an opaque colour written "#rrggbb", as in CSS; return it in lower case."""

    def convert(self, value: object, name: str, shown: str | None = None) -> str:
        """Return value in lower case if it is a "#rrggbb" string, or raise ParamError."""
        if not isinstance(value, str):
            raise ParamError(f'{name} must be a colour such as "#ffffff", not {describe(value)}')
        if not _HEX_COLOR.fullmatch(value):
            raise ParamError(f'{name} {show(value)} is not a colour written "#rrggbb"')
        return value.lower()

    def parse(self, text: str, name: str) -> str:
        """Read the string form's text as a colour, or raise ParamError."""
        return self.convert(text, name)

    def schema(self) -> dict[str, object]:
        """Return the JSON Schema of the accepted values."""
        return {"type": "string", "pattern": "^#[0-9a-fA-F]{6}$"}


TRUE_WORDS = ("True", "true", "1", "yes")
FALSE_WORDS = ("False", "false", "None", "0", "no")


@dataclass(frozen=True)
class Flag:
    """Accept a JSON boolean, or in the string form one of TRUE_WORDS or FALSE_WORDS."""

    def convert(self, value: object, name: str, shown: str | None = None) -> bool:
        """Return value if it is a boolean, or raise ParamError."""
        if not isinstance(value, bool):
            raise ParamError(f"{name} must be true or false, not {describe(value)}")
        return value

    def parse(self, text: str, name: str) -> bool:
        """Read the string form's text as a boolean, or raise ParamError."""
        if text in TRUE_WORDS or text in FALSE_WORDS:
            return text in TRUE_WORDS
        words = ", ".join(TRUE_WORDS + FALSE_WORDS)
        raise ParamError(f"{name} {show(text)} is not a boolean; use one of {words}")

    def schema(self) -> dict[str, object]:
        """Return the JSON Schema of the accepted values."""
        return {"type": "boolean"}


@dataclass(frozen=True)
class Param:
    """Declare one parameter: its name, type, default (None: none) and whether it is required."""

    name: str
    type: ParamType
    help: str
    default: object = None
    required: bool = False

    def schema(self) -> dict[str, object]:
        """Return this parameter's JSON Schema, with its help and default."""
        schema = {**self.type.schema(), "description": self.help}
        if self.default is not None:
            schema["default"] = self.default
        return schema
