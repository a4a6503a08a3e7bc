"""JSON Schemas of the operation language, built from the same declarations that validate.

Draft 2020-12 keywords only, as OpenAPI 3.1 and pydantic accept them.
"""

from __future__ import annotations

import re

from pipeline.errors import InvalidOperation
from pipeline.operation import Operation
from pipeline.operations import OPERATIONS
from pipeline.parsing import MAX_STRING_LENGTH, parse_operations


def operation_schemas() -> list[dict[str, object]]:
    """Return a schema for each operation's object form, then one for the string form."""
    return [_object_schema(operation) for operation in OPERATIONS] + [_string_schema()]


def _object_schema(operation: Operation) -> dict[str, object]:
    names = [operation.name, *operation.aliases]
    op: dict[str, object] = {"type": "string", "const": operation.name}
    if operation.aliases:
        op = {"type": "string", "enum": names}
    properties = {"op": op, **{param.name: param.schema() for param in operation.params}}
    required = ["op", *(param.name for param in operation.params if param.required)]
    return {
        "title": f"{operation.name.capitalize()}Operation",
        "description": operation.description,
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
        **operation.schema_extra,
    }


def _string_schema() -> dict[str, object]:
    names = [name for op in OPERATIONS for name in (op.name, *op.aliases)]
    bare = [name for op in OPERATIONS if _bare(op) for name in (op.name, *op.aliases)]
    forms = [form for operation in OPERATIONS for form in operation.string_forms]
    named, alone = ("|".join(re.escape(n) for n in group) for group in (names, bare))
    return {
        "title": "OperationString",
        "description": "The compact form: an operation's name, then = and its value(s); "
        "a name alone where no value is needed.",
        "type": "string",
        "maxLength": MAX_STRING_LENGTH,
        "pattern": rf"^\s*(?:(?:{alone})\s*|(?:{named})\s*=\s*\S.*)$",
        "examples": forms,
    }


def _bare(operation: Operation) -> bool:
    """Return whether the operation's name alone is a whole step, as the parser decides."""
    try:
        parse_operations([operation.name])
    except InvalidOperation:
        return False
    return True
