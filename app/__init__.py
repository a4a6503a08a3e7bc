"""The imgserve HTTP API: a thin Flask app over the job store and the job queue."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from flask import Flask
from flask.json.provider import DefaultJSONProvider

if TYPE_CHECKING:
    from worker.settings import Settings

DEFAULT_THREADS = 32
"""The request threads create_app assumes unless MAX_WAITS is given (`imgserve api`'s own)."""


class JSONInOrder(DefaultJSONProvider):
    """Flask's JSON with members in the order the code writes them, not sorted.

    A job answers with its id and state first, a problem with its type, title, status
    and detail, as RFC 9457 lists them.
    """

    sort_keys = False


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Create the API app: settings from the environment, then the test config.

    A test config may hold ``SETTINGS`` (a Settings) and ``BACKENDS`` (a Backends with a
    fake store or queue); ``MAX_WAITS`` bounds the long-polls held at once; other keys are
    Flask config.
    """
    # Imported here, not above: the `imgserve` job commands import app/ and need none of it.
    from app import docs, health, jobs
    from app.access_log import observe_requests
    from app.auth import load_keys, register_auth
    from app.backends import Backends
    from app.errors import register_error_handlers
    from app.headers import register_headers
    from app.http_metrics import HttpMetrics
    from worker.settings import Settings

    app = Flask(__name__)
    app.json = JSONInOrder(app)
    config = dict(test_config or {})
    settings: Settings = config.pop("SETTINGS", None) or Settings.from_env()
    backends = config.pop("BACKENDS", None) or Backends.from_settings(settings)
    app.config.from_mapping(
        MAX_CONTENT_LENGTH=backends.settings.max_body_bytes,
        MAX_WAITS=jobs.wait_slots(DEFAULT_THREADS),
    )
    app.config.update(config)
    app.extensions["imgserve"] = backends
    app.extensions["imgserve.waits"] = threading.BoundedSemaphore(app.config["MAX_WAITS"])
    app.extensions["imgserve.metrics"] = metrics = HttpMetrics()
    observe_requests(app, metrics)  # first: its after_request hook runs last, on the final answer
    register_auth(app, load_keys(backends.settings))
    register_headers(app, backends.settings)
    app.register_blueprint(jobs.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(docs.bp)
    register_error_handlers(app)
    return app
