"""Reading a request: a strict JSON body and numeric query parameters, or a clear problem.

A body is read as strict JSON (no NaN, no numbers too large for a float, no lone surrogates,
at most MAX_JSON_DEPTH levels, at most IMGSERVE_MAX_BODY_BYTES even when chunked), and a query
number as a JSON number given once; everything else is a 400, 413 or 422 problem.
"""

from __future__ import annotations

import json
import math
import re
import sys
from typing import Any

from flask import request
from werkzeug.exceptions import RequestEntityTooLarge

from app.errors import InvalidQuery, MalformedRequest, UnsupportedMediaType
from app.validation import pointer

MAX_JSON_DEPTH = 32
"""Levels of arrays and objects a body may have (a job needs 3). A fixed bound, not the stack
the parser happens to have left, so that a body reads the same in every process."""
TOO_DEEP = "the body is not valid JSON: it is nested too deeply"
WHOLE = re.compile(r"-?[0-9]+")
NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")


def read_json_body() -> Any:
    """Return the request's JSON body, or raise a 415 or 400 that says what is wrong."""
    if not request.is_json:
        raise UnsupportedMediaType(
            f"send the job as application/json, not {request.mimetype or 'no content type'}"
        )
    raw = _read_body()
    try:
        body = json.loads(
            raw,
            parse_constant=_reject_constant,
            parse_float=_finite_float,
            parse_int=_float_sized_int,
        )
    except RecursionError:
        raise MalformedRequest(TOO_DEEP) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedRequest(f"the body is not valid JSON: {exc}") from None
    _check_depth_and_strings(body)
    return body


def _read_body() -> bytes:
    """Return the raw body, or raise a 413 when it is larger than the limit."""
    raw = request.get_data(cache=False)  # a Content-Length above the limit: 413, nothing read
    # Without a length (a chunked body), werkzeug stops at the limit without a word; the
    # server's stream ends with the body, so one byte more tells whether it went on.
    cut = request.content_length is None and len(raw) == request.max_content_length
    if cut and request.environ["wsgi.input"].read(1):
        raise RequestEntityTooLarge()
    return raw


def _reject_constant(name: str) -> Any:
    """Refuse NaN and Infinity, which JSON does not have."""
    raise ValueError(f"{name} is not a JSON value")


def _finite_float(text: str) -> float:
    """Parse a JSON number, refusing ones too large for a float."""
    value = float(text)
    if not math.isfinite(value):
        raise _too_large(text)
    return value


def _float_sized_int(text: str) -> int:
    """Parse a JSON integer, refusing ones too large for a float, as _finite_float does."""
    # The largest float has 309 digits; a longer integer need not (and, past 4300 digits,
    # cannot) be converted to be refused.
    if len(text.lstrip("-")) > 309 or abs(value := int(text)) > sys.float_info.max:
        raise _too_large(text)
    return value


def _too_large(text: str) -> ValueError:
    """Return the error for a number too large for a float, showing at most 20 characters."""
    shown = text if len(text) <= 20 else f"{text[:20]}... ({len(text)} characters)"
    return ValueError(f"the number {shown} is too large")


Location = tuple["Location", str | int] | None
"""Where a value is in the body: its parent's location and its key, or None for the body."""


def _check_depth_and_strings(body: object) -> None:
    """Refuse a body nested deeper than MAX_JSON_DEPTH, or with a string that is not Unicode.

    A lone surrogate (a "\\ud800" escape without its pair) is not a character: it could not
    be written to a path, a log or the job store, so it is refused here with its pointer.
    """
    # Each entry holds a value, its depth and its location as (parent location, key), so a
    # pointer is only spelled out for the one value that is refused.
    stack: list[tuple[object, int, Location]] = [(body, 0, None)]
    while stack:
        value, depth, location = stack.pop()
        if isinstance(value, str):
            _check_unicode(value, "the string at", location)
        elif isinstance(value, dict | list):
            if depth == MAX_JSON_DEPTH:
                raise MalformedRequest(TOO_DEEP)
            if isinstance(value, dict):
                for key in value:
                    _check_unicode(key, "a member name of the object at", location)
            items = value.items() if isinstance(value, dict) else enumerate(value)
            stack += [(item, depth + 1, (location, key)) for key, item in items]


def _check_unicode(text: str, what: str, location: Location) -> None:
    """Raise a 400 naming where a string has a lone surrogate."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        parts: list[str | int] = []
        while location is not None:
            location, key = location
            parts.append(key)
        where = pointer(*reversed(parts))
        detail = (
            f"{what} {where or 'the top level'} has a lone surrogate"
            f" (\\u{ord(text[exc.start]):04x}), which is not a character"
        )
        raise MalformedRequest(
            f"the body is not valid JSON: {detail}", [{"pointer": where, "detail": detail}]
        ) from None


def query_number(
    name: str, *, default: float, low: float = 0, high: float, whole: bool = False
) -> float:
    """Return a numeric query parameter within [low, high], or raise a 422 naming it.

    The number is written as in JSON (ASCII digits, no spaces, no "1_000", "inf" or "nan"),
    and given once: of "?limit=5&limit=500" neither is taken silently.
    """
    given = request.args.getlist(name)
    if not given:
        return default
    if len(given) > 1:
        raise InvalidQuery.of(name, f"{name} is given {len(given)} times; give it once")
    raw = given[0]
    # float() of a matching string is never an error: a huge one is inf, out of range.
    value = float(raw) if (WHOLE if whole else NUMBER).fullmatch(raw) else math.nan
    if not low <= value <= high:
        kind = "a whole number" if whole else "a number"
        raise InvalidQuery.of(name, f"{name} must be {kind} from {low:g} to {high:g}, not {raw!r}")
    return int(value) if whole else value
