"""Parse a request's operations, in string or object form, into a normalized Chain.

An item is either the compact string form "name=value" ("resize=2", "splitQuadrants=True",
"crop=10,20,300,200"; each operation's module documents its own) or an object
{"op": "resize", "factor": 2}. Every problem is collected, each with a JSON Pointer: to the
item for a string ("/operations/3"), to the member for an object ("/operations/3/factor",
"/operations/3/op"), and InvalidOperation lists them all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from pipeline.chain import Chain, Step
from pipeline.errors import InvalidOperation, Problem, pointer_to
from pipeline.limits import DEFAULT_LIMITS, Limits
from pipeline.operation import Operation
from pipeline.operations import KNOWN_NAMES, find_operation
from pipeline.params import ParamError, describe, show

MAX_STRING_LENGTH = 100
MAX_PROBLEMS = 50
_ITEM_FORMS = 'a string such as "resize=2" or an object such as {"op": "resize", "factor": 2}'


def parse_operations(
    items: object, *, limits: Limits = DEFAULT_LIMITS, pointer: str = "/operations"
) -> Chain:
    """Parse operations into a chain, or raise InvalidOperation listing every problem."""
    if not isinstance(items, list | tuple):
        raise InvalidOperation(
            [Problem(pointer, f"operations must be a list, not {describe(items)}")]
        )
    if len(items) > limits.max_operations:
        raise InvalidOperation([_length_problem(len(items), limits, pointer)])
    problems: list[Problem] = []
    steps: list[Step | None] = []
    for index, item in enumerate(items):
        here = f"{pointer}/{index}"
        if isinstance(item, str):
            steps.append(_parse_string(item, here, problems))
        elif isinstance(item, Mapping):
            steps.append(_parse_object(item, here, problems))
        else:
            problems.append(
                Problem(here, f"an operation must be {_ITEM_FORMS}, not {describe(item)}")
            )
            steps.append(None)
    parsed = [step for step in steps if step is not None]
    fan_out = outputs_problem(steps, limits, pointer)
    if fan_out is not None:
        problems.append(fan_out)
    if problems:
        if len(problems) > MAX_PROBLEMS:
            more = len(problems) - MAX_PROBLEMS
            problems[MAX_PROBLEMS:] = [Problem(pointer, f"and {more} more problems")]
        raise InvalidOperation(problems)
    return Chain(tuple(parsed))


def _length_problem(length: int, limits: Limits, pointer: str) -> Problem:
    return Problem(
        pointer, f"the chain has {length} operations; the limit is {limits.max_operations}"
    )


def chain_problem(steps: Sequence[Step | None], limits: Limits, pointer: str) -> Problem | None:
    """Return the problem with a chain's length or fan-out under limits, if it has one."""
    if len(steps) > limits.max_operations:
        return _length_problem(len(steps), limits, pointer)
    return outputs_problem(steps, limits, pointer)


def outputs_problem(steps: Sequence[Step | None], limits: Limits, pointer: str) -> Problem | None:
    """Return a problem at the step whose fan-out passes max_outputs, if one does."""
    total, fans, first_over = 1, [], None
    for index, step in enumerate(steps):
        if step is not None and (outputs := step.operation.outputs(step.params)) > 1:
            total *= outputs
            fans.append(step.op)
            if total > limits.max_outputs and first_over is None:
                first_over = index
    if first_over is None:
        return None
    what = f"{len(fans)} {fans[0]}s" if len(set(fans)) == 1 else f"{len(fans)} fan-out steps"
    return Problem(
        f"{pointer}/{first_over}",
        f"{what} would make {total} outputs per image; the limit is {limits.max_outputs}",
    )


def _find(name: str, at: str, problems: list[Problem]) -> Operation | None:
    operation = find_operation(name)
    if operation is None:
        known = ", ".join(KNOWN_NAMES)
        problems.append(Problem(at, f"unknown operation {show(name)}; the known ones are {known}"))
    return operation


def _parse_string(text: str, here: str, problems: list[Problem]) -> Step | None:
    if len(text) > MAX_STRING_LENGTH:
        problems.append(
            Problem(
                here,
                f"an operation string may have at most {MAX_STRING_LENGTH} characters;"
                f" this one has {len(text)}",
            )
        )
        return None
    name, equals, value = (part.strip() for part in text.partition("="))
    operation = _find(name, here, problems)
    if operation is None:
        return None
    if equals and not value:
        example = next(form for form in operation.string_forms if "=" in form)
        problems.append(Problem(here, f"{name} needs a value after '=', as in {example!r}"))
        return None
    try:
        if not value:
            texts = {}
        elif operation.split_text is not None:
            texts = operation.split_text(value)
        else:
            texts = _positional(operation, name, value)
    except ParamError as error:
        problems.append(Problem(here, error.message))
        return None
    values: dict[str, object] = {}
    failed = False
    for param_name, param_text in texts.items():
        param = operation.param(param_name)
        assert param is not None, f"{operation.name} splits its text into an undeclared parameter"
        try:
            values[param_name] = param.type.parse(param_text, param_name)
        except ParamError as error:
            problems.append(Problem(here, f"{name} {error.message}"))
            failed = True
    return _complete(operation, name, values, set(texts), failed, lambda _: here, problems)


def _positional(operation: Operation, name: str, value: str) -> dict[str, str]:
    parts = [part.strip() for part in value.split(",")]
    if len(parts) > len(operation.positional):
        raise ParamError(
            f"{name} takes at most {len(operation.positional)} comma-separated values"
            f" ({', '.join(operation.positional)}), not {len(parts)}"
        )
    return dict(zip(operation.positional, parts, strict=False))


def _parse_object(item: Mapping[object, object], here: str, problems: list[Problem]) -> Step | None:
    if "op" not in item:
        problems.append(
            Problem(here, 'an operation object needs an "op" member naming the operation')
        )
        return None
    name = item["op"]
    if not isinstance(name, str):
        problems.append(Problem(f"{here}/op", f"op must be a string, not {describe(name)}"))
        return None
    operation = _find(name, f"{here}/op", problems)
    if operation is None:
        return None
    values: dict[str, object] = {}
    failed = False
    for key, value in item.items():
        param = operation.param(key) if isinstance(key, str) and key != "op" else None
        at = pointer_to(here, key)
        if key == "op":
            continue
        if param is None:
            allowed = ", ".join(p.name for p in operation.params)
            problems.append(
                Problem(at, f"{name} has no parameter {show(key)}; its parameters are {allowed}")
            )
            failed = True
            continue
        try:
            values[param.name] = param.type.convert(value, param.name)
        except ParamError as error:
            problems.append(Problem(at, f"{name} {error.message}"))
            failed = True
    given = {key for key in item if isinstance(key, str)}

    def point(param: str | None) -> str:
        return f"{here}/{param}" if param in given else here

    return _complete(operation, name, values, given, failed, point, problems)


def _complete(
    operation: Operation,
    name: str,
    values: dict[str, object],
    given: set[str],
    failed: bool,
    point: Callable[[str | None], str],
    problems: list[Problem],
) -> Step | None:
    """Fill defaults, report missing parameters and apply the operation's cross-checks."""
    for param in operation.params:
        if param.name in given:
            continue
        if param.required:
            problems.append(Problem(point(None), f"{name} is missing {show(param.name)}"))
            failed = True
        elif param.default is not None:
            values[param.name] = param.default
    if failed:
        return None
    if operation.finish is not None:
        try:
            values = operation.finish(values)
        except ParamError as error:
            problems.append(Problem(point(error.param), error.message))
            return None
    ordered = {p.name: values[p.name] for p in operation.params if values.get(p.name) is not None}
    return Step(operation.name, ordered)
