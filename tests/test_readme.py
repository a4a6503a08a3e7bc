"""The README stays true: every setting and every operation it must document is there."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pipeline
from worker.settings import Settings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def variable(name: str) -> str:
    """Return the environment variable of a settings field."""
    return "REDIS_URL" if name == "redis_url" else f"IMGSERVE_{name.upper()}"


def test_every_setting_is_in_the_configuration_table() -> None:
    table = README.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([A-Z_]+)` \|", table, re.MULTILINE))
    assert {variable(f.name) for f in fields(Settings)} <= documented


def test_every_documented_imgserve_variable_exists() -> None:
    mentioned = set(re.findall(r"IMGSERVE_[A-Z_]+", README)) - {"IMGSERVE_URL"}
    assert mentioned <= {variable(f.name) for f in fields(Settings)}


def test_every_operation_its_aliases_and_parameters_are_in_the_operations_table() -> None:
    table = README.split("### Operations", 1)[1].split("\n### ", 1)[0]
    for operation in pipeline.OPERATIONS:
        row = next(line for line in table.splitlines() if line.startswith(f"| `{operation.name}`"))
        for name in (*operation.aliases, *(p.name for p in operation.params)):
            assert f"`{name}`" in row, (operation.name, name)
        for form in operation.string_forms:
            assert f"`{form}`" in row, (operation.name, form)


def test_the_two_commands_open_the_readme() -> None:
    start = README.split("## A first job", 1)[0]
    assert "make run" in start and "make test" in start
