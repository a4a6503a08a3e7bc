"""`make run` and `make test` from a fresh clone: each sets itself up, run with only what it needs."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def planned(*arguments: str, venv: Path) -> list[str]:
    """Return the commands make would run for arguments in a clone with no .venv yet."""
    done = subprocess.run(
        ["make", "--dry-run", *arguments, f"VENV={venv}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_make_run_installs_the_service_alone_and_serves_it(tmp_path: Path) -> None:
    venv = tmp_path / ".venv"
    assert planned("run", venv=venv) == [
        f"python3 -m venv {venv}",
        f"{venv}/bin/python -m pip install --quiet --upgrade pip",
        f"{venv}/bin/pip install --quiet -e .",
        f"touch {venv}/.installed-service",
        f"{venv}/bin/imgserve up",
    ]


def test_make_run_port_serves_on_that_port(tmp_path: Path) -> None:
    assert planned("run", "PORT=9000", venv=tmp_path / ".venv")[-1] == (
        f"{tmp_path}/.venv/bin/imgserve up --port 9000"
    )


def test_make_test_installs_the_test_extras_then_runs_pytest(tmp_path: Path) -> None:
    venv = tmp_path / ".venv"
    assert planned("test", venv=venv) == [
        f"python3 -m venv {venv}",
        f"{venv}/bin/python -m pip install --quiet --upgrade pip",
        f"{venv}/bin/pip install --quiet -e '.[test]'",
        f"touch {venv}/.installed-service {venv}/.installed",
        f"{venv}/bin/pytest",
    ]


def test_the_service_s_dependencies_hold_no_test_tool() -> None:
    def name(requirement: str) -> str:
        return re.split(r"[\[<>=~ ]", requirement, maxsplit=1)[0].lower()

    service = {name(r) for r in PYPROJECT["project"]["dependencies"]}
    tools = {name(r) for r in PYPROJECT["project"]["optional-dependencies"]["test"]}
    assert service & tools == set()
    assert {"pytest", "mypy", "ruff", "schemathesis", "hypothesis", "fakeredis"} <= tools
