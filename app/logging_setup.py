"""Logging of the imgserve service processes (``api``, ``up``, ``worker``), set up in one place.

Every line goes to stderr. ``IMGSERVE_LOG_FORMAT=text`` (the default) reads as
``2026-12-02 17:23:47,871 INFO imgserve.access: GET /jobs 202 12.4 ms job 2f99...``;
``IMGSERVE_LOG_FORMAT=json`` writes one JSON object a line, with the fields a line was
logged with (``extra=``) as members of their own, e.g. the access log's method, path,
status, duration_ms and job_id.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s [%(processName)s] %(name)s: %(message)s"
RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
"""What every log record holds; anything else on a record was given as ``extra=``."""


class WithoutHostWarning(logging.Filter):
    """Drop kombu's "No hostname was supplied" warning: the embedded queue is a folder, no host.

    kombu logs it on each connection to the filesystem transport (every POST, in embedded
    mode), where it says nothing wrong.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep every record but that warning."""
        return not str(record.msg).startswith("No hostname was supplied")


class LogSettingError(ValueError):
    """Raised when IMGSERVE_LOG_FORMAT or a log level names nothing imgserve knows."""


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON object: time, level, logger, message, then its extras."""

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as a line of JSON."""
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "process": record.processName,
            "message": record.getMessage(),
        }
        entry.update(
            (key, value)
            for key, value in vars(record).items()
            if key not in RECORD_ATTRIBUTES and not key.startswith("_")
        )
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str)


def log_format() -> str:
    """Return the format IMGSERVE_LOG_FORMAT asks for: text (the default) or json."""
    chosen = os.environ.get("IMGSERVE_LOG_FORMAT", "").strip().lower() or "text"
    if chosen not in FORMATS:
        raise LogSettingError(
            f"IMGSERVE_LOG_FORMAT is {os.environ['IMGSERVE_LOG_FORMAT']!r}; use text or json"
        )
    return chosen


def configure_logging(level: str = "INFO") -> None:
    """Send every logger's records at level and above to stderr, in IMGSERVE_LOG_FORMAT."""
    if level.upper() not in logging.getLevelNamesMapping():
        raise LogSettingError(f"log level {level!r} is none of DEBUG, INFO, WARNING, ERROR")
    handler = logging.StreamHandler(sys.stderr)
    formatter = JsonFormatter() if log_format() == "json" else logging.Formatter(TEXT_FORMAT)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    kombu = logging.getLogger("kombu.connection")
    if not any(isinstance(f, WithoutHostWarning) for f in kombu.filters):
        kombu.addFilter(WithoutHostWarning())
    logging.captureWarnings(True)
