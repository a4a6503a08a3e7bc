"""The Celery app: broker and reliability settings, all from ``Settings``.

With ``REDIS_URL`` the broker is Redis; without it, kombu's filesystem transport
under ``IMGSERVE_STATE_DIR/queue`` (no server at all; worker/file_queue.py). Either way: JSON only,
late acks with requeue when a worker process dies, one task prefetched per
process, time limits below the broker's visibility timeout, task events only where
``IMGSERVE_TASK_EVENTS`` asks for them (Docker Compose does, for Flower).
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from worker.settings import Settings

QUEUE = "imgserve"
TASK_NAME = "imgserve.process_image"
FILE_TRANSPORT = "worker.file_queue:Transport"
"""kombu's filesystem transport with imgserve's channel (worker/file_queue.py)."""
WORKER_FULL_DISK_WAIT = 60.0
"""Seconds a worker's publish waits for space in a full state folder before it fails."""
OWN_TRANSPORT = "worker.redis_transport:Transport"
"""kombu's Redis transport whose deliveries survive a full Redis (worker/redis_transport.py)."""


def celery_config(settings: Settings) -> dict[str, Any]:
    """Return the Celery configuration for these settings."""
    if settings.redis_url:
        broker = settings.redis_url
        # For plain redis:// only: a transport given by name overrides the URL's scheme
        # (rediss:// would lose its TLS, sentinel:// its failover), so those keep kombu's own.
        plain = broker.partition("://")[0] == "redis"
        transport: str | None = OWN_TRANSPORT if plain else None
        transport_options: dict[str, Any] = {
            # A message not acked this long after delivery is handed out again; keep it
            # well above the hard time limit so a slow image is never run twice at once.
            "visibility_timeout": max(3600, 2 * settings.hard_time_limit),
            # As the job store's: a Redis that does not answer, or answers no more (frozen,
            # partitioned), is a quick error (the API's 503), not a hang.
            "socket_connect_timeout": 2,
            "socket_timeout": 2,
        }
    else:
        broker, transport = "filesystem://", FILE_TRANSPORT
        folders = {name: settings.state_dir / name for name in ("queue", "control")}
        for folder in folders.values():
            folder.mkdir(parents=True, exist_ok=True)
        transport_options = {
            "data_folder_in": str(folders["queue"]),
            "data_folder_out": str(folders["queue"]),
            "control_folder": str(folders["control"]),
            "polling_interval": 0.05,
            "full_disk_wait": 0,  # the API's publish fails at once: a 503, the job withdrawn
        }
    return {
        "broker_url": broker,
        **({"broker_transport": transport} if transport else {}),
        "broker_transport_options": transport_options,
        "broker_connection_retry_on_startup": True,
        # The worker never gives up on its broker: it reconnects for as long as it takes, and
        # a Redis error reply (OOM at maxmemory, READONLY) restarts the consumer like a lost
        # connection does instead of ending the worker ("Unrecoverable error").
        "broker_connection_max_retries": None,
        "broker_channel_error_retry": True,
        # Tasks running when the connection drops keep going: they wait the outage out and
        # record their images (worker/outages.py) rather than being killed and redone.
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        "task_default_queue": QUEUE,
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_ignore_result": True,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_soft_time_limit": settings.soft_time_limit,
        "task_time_limit": settings.hard_time_limit,
        # Task events cost ~2.7 ms of CPU an image (benchmarks/RESULTS-service.md); they are
        # for Flower, which also switches them on in running workers when it starts.
        "worker_send_task_events": settings.task_events,
        "task_send_sent_event": settings.task_events,
        "worker_hijack_root_logger": False,
        "include": ["worker.tasks"],
    }


def wait_out_full_disk(app: Celery) -> None:
    """Make the app's publishes wait out a full state folder, as a worker's must.

    A task whose next task cannot be published would leave its job without one.
    """
    options = app.conf.broker_transport_options
    if "full_disk_wait" in options:
        app.conf.broker_transport_options = {**options, "full_disk_wait": WORKER_FULL_DISK_WAIT}


def make_celery(settings: Settings) -> Celery:
    """Make the Celery app for these settings."""
    app = Celery("imgserve")
    app.conf.update(celery_config(settings))
    return app


settings = Settings.from_env()
app = make_celery(settings)
