"""The README stays true: its first job, settings, operations, statuses and links match the code."""

from __future__ import annotations

import json
import os
import re
from dataclasses import fields
from pathlib import Path

import app.cli_text
import app.errors
import pipeline
from app.models import JobResource
from worker.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def variable(name: str) -> str:
    """Return the environment variable of a settings field."""
    return "REDIS_URL" if name == "redis_url" else f"IMGSERVE_{name.upper()}"


def section(heading: str) -> str:
    """Return the README's text under a heading, up to the next heading of its level."""
    level = heading.split(" ", 1)[0]
    return README.split(f"\n{heading}\n", 1)[1].split(f"\n{level} ", 1)[0]


def code_blocks(text: str, language: str) -> list[str]:
    """Return the bodies of the fenced code blocks of a language in text."""
    return re.findall(rf"^```{language}\n(.*?)^```", text, re.MULTILINE | re.DOTALL)


def table(text: str) -> dict[str, list[str]]:
    """Return a Markdown table's rows by their first cell (without backticks)."""
    rows = {}
    for line in text.splitlines():
        if line.startswith("| ") and not line.startswith("|---"):
            cells = [cell.strip() for cell in line.strip("|").split(" | ")]
            rows[cells[0].strip("`")] = cells[1:]
    return rows


def shown(value: object) -> str:
    """Render a declared bound or default as the README writes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def test_the_two_commands_open_the_readme() -> None:
    start = README.split("## A first job", 1)[0]
    assert "make run" in start and "make test" in start


def test_both_commands_do_their_own_set_up() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^run: install\b", makefile, re.MULTILINE)
    assert re.search(r"^test: install\b", makefile, re.MULTILINE)


def test_the_first_job_is_examples_job_json() -> None:
    shown_job = json.loads(code_blocks(section("## A first job"), "json")[0])
    assert shown_job == json.loads((ROOT / "examples" / "job.json").read_text())


def test_the_first_job_shows_the_summary_the_cli_prints_for_what_the_job_writes() -> None:
    job = json.loads((ROOT / "examples" / "job.json").read_text())
    count = pipeline.parse_operations(job["operations"]).output_count
    images = [
        {**image, "state": "succeeded", "error": None,
         "outputs": pipeline.output_paths(image["output"], count)}
        for image in job["images"]
    ]  # fmt: skip
    done = {"state": "succeeded", "images": images, "progress": {"total": 4, "done": 4,
            "failed": 0, "cancelled": 0, "percent": 100.0}}  # fmt: skip
    console = code_blocks(section("## A first job"), "console")[0].splitlines()
    assert console[0] == "$ .venv/bin/imgserve submit examples/job.json --wait"
    assert console[2:] == app.cli_text.summary(done)
    assert console[2:] == [
        "succeeded: 4 of 4 images done, 0 failed",
        "wrote 16 outputs to examples/output/",
    ]
    text = section("## A first job")
    assert "16 outputs" in text and "`dawn_1.jpg` to `night_4.webp`" in text
    assert images[0]["outputs"][0].endswith("/dawn_1.jpg")
    assert images[-1]["outputs"][-1].endswith("/night_4.webp")


def test_the_job_resource_example_shows_the_first_job_normalized() -> None:
    job = json.loads((ROOT / "examples" / "job.json").read_text())
    example = json.loads(code_blocks(section("## The job resource"), "json")[0])
    assert example["operations"] == pipeline.parse_operations(job["operations"]).to_json()
    assert example["encode"] == pipeline.parse_encode_options(None).to_json()
    assert example["images"][0]["input"] == job["images"][0]["input"]


def test_every_setting_is_in_the_configuration_table() -> None:
    documented = set(table(section("## Configuration")))
    assert {variable(f.name) for f in fields(Settings)} <= documented


def test_every_documented_imgserve_variable_exists() -> None:
    variables = {variable(f.name) for f in fields(Settings)}
    command_line = {"IMGSERVE_URL", "IMGSERVE_TOKEN", "IMGSERVE_PORT", "IMGSERVE_LOG_FORMAT"}
    mentioned = set(re.findall(r"IMGSERVE_[A-Z_]++(?!\*)", README)) - command_line
    assert mentioned <= variables
    for prefix in re.findall(r"(IMGSERVE_[A-Z_]+)\*", README):
        assert any(name.startswith(prefix) for name in variables), prefix


def test_the_configuration_table_gives_every_setting_its_default() -> None:
    words: dict[str, object] = {
        "unset": None,
        "`IMGSERVE_ROOT`": None,
        "off": False,
        "the working directory": Path.cwd(),
        "`.imgserve` in the working directory": Path.cwd() / ".imgserve",
        "the usable CPUs": len(os.sched_getaffinity(0)),
    }
    rows, defaults = table(section("## Configuration")), Settings()
    for f in fields(Settings):
        cell = rows[variable(f.name)][0]
        default = getattr(defaults, f.name)
        if cell in words:
            assert words[cell] == default, f.name
        else:
            assert cell.split(" ", 1)[0] == str(default), f.name


def test_every_operation_its_aliases_and_parameters_are_in_the_operations_table() -> None:
    rows = section("### Operations").splitlines()
    for operation in pipeline.OPERATIONS:
        row = next(line for line in rows if line.startswith(f"| `{operation.name}`"))
        for name in (*operation.aliases, *(p.name for p in operation.params)):
            assert f"`{name}`" in row, (operation.name, name)
        for form in operation.string_forms:
            assert f"`{form}`" in row, (operation.name, form)


def test_every_parameter_has_its_bounds_and_default_in_the_operations_table() -> None:
    rows = section("### Operations").splitlines()
    for operation in pipeline.OPERATIONS:
        row = next(line for line in rows if line.startswith(f"| `{operation.name}`"))
        for param in operation.params:
            schema = param.schema()
            expected = []
            if "minimum" in schema:
                expected.append(f"{shown(schema['minimum'])} to {shown(schema['maximum'])}")
            if "anyOf" in schema:
                expected.append("0 or odd")
            if schema["type"] == "boolean":
                expected.append("boolean")
            expected += [f"`{v}`" if isinstance(v, str) else str(v) for v in schema.get("enum", [])]
            if "default" in schema:
                expected.append(f"default {shown(schema['default'])}")
            if param.required:
                expected.append("required")
            for text in expected:
                assert text in row, (operation.name, param.name, text)


def test_every_encoder_setting_has_its_range_and_default() -> None:
    text = " ".join(section("### Encoder settings").split())
    for name, schema in pipeline.encode_options_schema()["properties"].items():
        if "minimum" in schema:
            said = f"{schema['minimum']} to {schema['maximum']}, default {schema['default']}"
        elif "enum" in schema:
            choices = " or ".join(f'`"{choice}"`' for choice in schema["enum"])
            said = f'{choices}, default `"{schema["default"]}"`'
        elif schema["type"] == "boolean":
            said = f"true or false, default {json.dumps(schema['default'])}"
        else:
            said = f'`"{schema["pattern"].strip("^$")}"`, default `"{schema["default"]}"`'
        assert f"`{name}` ({said}" in text, name


def test_every_status_the_api_answers_is_in_the_errors_table() -> None:
    statuses = {
        value.status
        for value in vars(app.errors).values()
        if isinstance(value, type) and isinstance(getattr(value, "status", None), int)
    }
    documented = {int(status) for status in table(section("## Errors")) if status.isdigit()}
    assert statuses <= documented
    assert {405, 413} <= documented  # werkzeug's own, answered in the same shape


def test_every_job_and_image_state_is_described() -> None:
    schema = JobResource.model_json_schema()
    image = next(d for d in schema["$defs"].values() if "state" in d.get("properties", {}))
    text = section("## The job resource")
    job_line = next(line for line in text.split("\n- ") if line.startswith("**Job states**"))
    image_line = next(line for line in text.split("\n- ") if line.startswith("**Image states**"))
    for state in schema["properties"]["state"]["enum"]:
        assert f"`{state}`" in job_line, state
    for state in image["properties"]["state"]["enum"]:
        assert f"`{state}`" in image_line, state


def test_every_local_link_names_a_file_in_the_repository() -> None:
    links = re.findall(r"\]\(([^)]+)\)", README)
    local = [link for link in links if "://" not in link]
    assert local
    for link in local:
        assert (ROOT / link.split("#", 1)[0]).is_file(), link


def test_the_speed_table_quotes_the_recorded_pipeline_run() -> None:
    results = (ROOT / "benchmarks" / "RESULTS-pipeline.md").read_text()
    figures = re.findall(r"\| ([0-9.]+) ms\b", section("## Speed"))
    assert len(figures) == 10
    for figure in figures:
        assert re.search(rf"\| {re.escape(figure)} \|", results), figure
