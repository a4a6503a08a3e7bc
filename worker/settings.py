"""Settings of the whole service, read once from the environment.

Every knob is an environment variable with a documented default (the README's
"Configuration" table lists the same names). ``REDIS_URL`` selects the Redis
deployment; without it imgserve runs embedded: a filesystem queue and a SQLite
job store under ``IMGSERVE_STATE_DIR``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from pipeline import Limits
from worker.liveness import HARD_TIME_LIMIT, HEARTBEAT, STALE_AFTER

OVERWRITE_POLICIES = ("replace", "never")
"""IMGSERVE_OVERWRITE: whether a job's outputs may replace existing files by default."""
_PER = {"s": 1.0, "min": 60.0, "h": 3600.0}


class SettingsError(ValueError):
    """Raised when an environment variable holds a value imgserve cannot use."""


def parse_rate(text: str) -> tuple[float, int]:
    """Return a rate such as ``10/s`` as (per second, burst): the burst is its count."""
    count, _, unit = text.partition("/")
    if not count.isdigit() or int(count) < 1 or unit not in _PER:
        raise SettingsError(
            f"IMGSERVE_SUBMIT_RATE={text!r} is not a rate such as 10/s, 600/min or 5000/h"
        )
    return int(count) / _PER[unit], int(count)


@dataclass(frozen=True)
class Settings:
    """What the API, the workers and the CLI need to know about their deployment."""

    redis_url: str | None = None
    root: Path = field(default_factory=Path.cwd)
    input_root: Path | None = None
    output_root: Path | None = None
    state_dir: Path = field(default_factory=lambda: Path.cwd() / ".imgserve")
    job_ttl: int = 7 * 24 * 3600
    job_window: int = 8
    max_attempts: int = 3
    soft_time_limit: int = 300
    hard_time_limit: int = HARD_TIME_LIMIT
    max_images: int = 1000
    max_body_bytes: int = 1024 * 1024
    max_operations: int = 32
    max_outputs: int = 256
    max_pixels: int = 100_000_000
    max_input_bytes: int = 200 * 1024 * 1024
    stale_after: int = STALE_AFTER
    batch_ms: int = 250
    task_events: bool = False
    concurrency: int = field(default_factory=lambda: len(os.sched_getaffinity(0)))
    api_keys: str | None = field(default=None, repr=False)
    """Comma-separated name:token pairs (app.auth reads them); unset with no file: anonymous."""
    api_keys_file: Path | None = None
    metrics_token: str | None = field(default=None, repr=False)
    metrics_open: bool = False
    allow_anonymous: bool = False
    cors_origins: str | None = None
    overwrite: str = "replace"
    max_job_pixels: int = 20_000_000_000
    max_job_outputs: int = 10_000
    max_active_jobs: int = 20
    submit_rate: str = "10/s"

    def __post_init__(self) -> None:
        # Celery's prefork pool arms the hard limit only when the soft one fires: a soft
        # limit at or above the hard one would silently switch the hard limit off.
        if self.soft_time_limit >= self.hard_time_limit:
            raise SettingsError(
                f"IMGSERVE_SOFT_TIME_LIMIT ({self.soft_time_limit} s) must be below "
                f"IMGSERVE_HARD_TIME_LIMIT ({self.hard_time_limit} s)"
            )
        # A worker is gone once no heartbeat came for stale_after: a few beats may be late
        # on a loaded machine without its images being taken from it.
        if self.stale_after < 3 * HEARTBEAT:
            raise SettingsError(
                f"IMGSERVE_STALE_AFTER ({self.stale_after} s) must be at least "
                f"{3 * HEARTBEAT:.0f} s: three heartbeats (one every {HEARTBEAT:.0f} s), so that "
                "a worker whose heartbeat is late once is not taken for gone"
            )
        if self.overwrite not in OVERWRITE_POLICIES:
            raise SettingsError(
                f"IMGSERVE_OVERWRITE={self.overwrite!r} is not one of "
                + ", ".join(OVERWRITE_POLICIES)
            )
        parse_rate(self.submit_rate)

    @property
    def rate(self) -> tuple[float, int]:
        """Return IMGSERVE_SUBMIT_RATE as submissions a second and the burst allowed."""
        return parse_rate(self.submit_rate)

    @property
    def separate_roots(self) -> bool:
        """Return whether inputs and outputs lie in two different folders."""
        return self.inputs.resolve() != self.outputs.resolve()

    @property
    def limits(self) -> Limits:
        """Return the pipeline limits these settings ask for."""
        return Limits(
            max_operations=self.max_operations,
            max_outputs=self.max_outputs,
            max_pixels=self.max_pixels,
            max_input_bytes=self.max_input_bytes,
        )

    @property
    def inputs(self) -> Path:
        """Return the folder every input lies in (IMGSERVE_INPUT_ROOT, else the root)."""
        return self.input_root or self.root

    @property
    def outputs(self) -> Path:
        """Return the folder every output lies in (IMGSERVE_OUTPUT_ROOT, else the root)."""
        return self.output_root or self.root

    @property
    def embedded(self) -> bool:
        """Return whether imgserve runs without a server (no REDIS_URL)."""
        return not self.redis_url

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from ``IMGSERVE_*`` variables and ``REDIS_URL``, then overrides."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = "REDIS_URL" if f.name == "redis_url" else f"IMGSERVE_{f.name.upper()}"
            raw = env.get(name)
            if raw is None or raw == "":
                continue
            values[f.name] = _convert(name, raw, cls._kind(f.name))
        settings = cls(**values)
        settings = replace(settings, **overrides) if overrides else settings
        return replace(
            settings,
            root=settings.root.resolve(),
            input_root=settings.input_root.resolve() if settings.input_root else None,
            output_root=settings.output_root.resolve() if settings.output_root else None,
        )

    @classmethod
    def _kind(cls, name: str) -> type:
        """Return the type of the field called name (annotations are strings here)."""
        annotation = cls.__dataclass_fields__[name].type
        kinds = {"int": int, "bool": bool, "Path": Path, "Path | None": Path}
        return kinds.get(str(annotation), str)


_SWITCHES = {"1": True, "true": True, "yes": True, "on": True,
             "0": False, "false": False, "no": False, "off": False}  # fmt: skip


def _convert(name: str, raw: str, kind: type) -> Any:
    """Convert one environment value, naming the variable when it is wrong."""
    if kind is int:
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(f"{name}={raw!r} is not a whole number") from None
        if value < 1:
            raise SettingsError(f"{name}={raw!r} must be at least 1")
        return value
    if kind is bool:
        if raw.lower() in _SWITCHES:
            return _SWITCHES[raw.lower()]
        raise SettingsError(f"{name}={raw!r} is not one of 1, 0, true, false, yes, no, on, off")
    if kind is Path:
        return Path(raw).expanduser()
    return raw
