"""The imgserve HTTP API: a thin Flask app over the job store and the queue."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from app.services import Services
from worker.settings import Settings


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Create the API app: settings from the environment, then the test config.

    A test config may hold ``SETTINGS`` (a Settings) and ``SERVICES`` (a Services
    with a fake store or queue); other keys are Flask config.
    """
    from app import docs, health, jobs
    from app.errors import register_error_handlers

    app = Flask(__name__)
    config = dict(test_config or {})
    settings: Settings = config.pop("SETTINGS", None) or Settings.from_env()
    services = config.pop("SERVICES", None) or Services.from_settings(settings)
    app.config.from_mapping(
        MAX_CONTENT_LENGTH=services.settings.max_body_bytes, JSON_SORT_KEYS=False
    )
    app.config.update(config)
    app.extensions["imgserve"] = services
    app.register_blueprint(jobs.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(docs.bp)
    register_error_handlers(app)
    return app
