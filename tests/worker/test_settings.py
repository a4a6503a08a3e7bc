"""Settings come from the environment, with clear words for a bad value."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from app.cli import worker_argv
from worker.celery_app import celery_config
from worker.settings import Settings, SettingsError


def test_defaults_need_no_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env({})
    assert settings.embedded and settings.redis_url is None
    assert settings.root == tmp_path.resolve()
    assert settings.state_dir == tmp_path / ".imgserve"
    assert settings.job_ttl == 7 * 24 * 3600
    assert settings.limits.max_outputs == 256 and settings.limits.max_pixels == 100_000_000


def test_environment_variables_set_every_field(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "REDIS_URL": "redis://h:1/2",
            "IMGSERVE_ROOT": str(tmp_path),
            "IMGSERVE_JOB_WINDOW": "3",
            "IMGSERVE_MAX_PIXELS": "1000",
        }
    )
    assert not settings.embedded
    assert (settings.redis_url, settings.root, settings.job_window) == (
        "redis://h:1/2",
        tmp_path,
        3,
    )
    assert settings.limits.max_pixels == 1000


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("many", "IMGSERVE_JOB_WINDOW='many' is not a whole number"),
        ("0", "IMGSERVE_JOB_WINDOW='0' must be at least 1"),
    ],
)
def test_a_bad_number_names_the_variable(value: str, message: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"IMGSERVE_JOB_WINDOW": value})
    assert str(raised.value) == message


def test_celery_is_configured_for_reliability(tmp_path: Path) -> None:
    config = celery_config(Settings(redis_url="redis://h:1/0", root=tmp_path, state_dir=tmp_path))
    assert config["task_acks_late"] and config["task_reject_on_worker_lost"]
    assert config["worker_prefetch_multiplier"] == 1
    assert config["accept_content"] == ["json"] and config["task_serializer"] == "json"
    assert config["task_soft_time_limit"] < config["task_time_limit"]
    assert config["task_time_limit"] < config["broker_transport_options"]["visibility_timeout"]
    assert not config["worker_send_task_events"] and not config["task_send_sent_event"]
    assert config["broker_transport"] == "worker.redis_transport:Transport"  # survives a full Redis
    assert config["broker_transport_options"]["socket_connect_timeout"] == 2  # a quick 503
    assert config["broker_transport_options"]["socket_timeout"] == 2  # also when frozen


@pytest.mark.parametrize("url", ["rediss://h:1/0", "sentinel://h:26379/0"])
def test_other_redis_schemes_keep_kombus_own_transport(tmp_path: Path, url: str) -> None:
    config = celery_config(Settings(redis_url=url, root=tmp_path, state_dir=tmp_path))
    assert config["broker_url"] == url and "broker_transport" not in config  # TLS, failover


@pytest.mark.parametrize(
    ("raw", "expected"), [("1", True), ("true", True), ("ON", True), ("0", False), ("no", False)]
)
def test_task_events_are_off_unless_asked_for(tmp_path: Path, raw: str, expected: bool) -> None:
    settings = Settings.from_env({"IMGSERVE_TASK_EVENTS": raw}, root=tmp_path)
    assert settings.task_events is expected
    config = celery_config(replace(settings, redis_url="redis://h:1/0"))
    assert config["worker_send_task_events"] is expected
    assert config["task_send_sent_event"] is expected
    assert (
        "--task-events" in worker_argv(2, "INFO", embedded=False, task_events=expected)
    ) is expected


def test_a_task_events_value_that_is_not_a_switch_is_refused() -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"IMGSERVE_TASK_EVENTS": "maybe"})
    assert str(raised.value) == (
        "IMGSERVE_TASK_EVENTS='maybe' is not one of 1, 0, true, false, yes, no, on, off"
    )


def test_the_embedded_broker_is_a_folder_under_the_state_dir(tmp_path: Path) -> None:
    config = celery_config(Settings(root=tmp_path, state_dir=tmp_path / "state"))
    assert config["broker_url"] == "filesystem://"
    assert config["broker_transport"] == "worker.file_queue:Transport"  # whole messages
    assert config["broker_transport_options"]["data_folder_in"] == str(tmp_path / "state" / "queue")
    assert (tmp_path / "state" / "queue").is_dir()


def test_concurrency_defaults_to_the_cpus_this_process_may_use() -> None:
    assert Settings.from_env({}).concurrency == len(os.sched_getaffinity(0))
    assert Settings.from_env({"IMGSERVE_CONCURRENCY": "3"}).concurrency == 3


def test_a_soft_time_limit_not_below_the_hard_one_is_refused() -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"IMGSERVE_SOFT_TIME_LIMIT": "60", "IMGSERVE_HARD_TIME_LIMIT": "60"})
    assert str(raised.value) == (
        "IMGSERVE_SOFT_TIME_LIMIT (60 s) must be below IMGSERVE_HARD_TIME_LIMIT (60 s)"
    )


@pytest.mark.parametrize("stale_after", ["1", "5"])
def test_a_stale_limit_below_three_heartbeats_is_refused(stale_after: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"IMGSERVE_STALE_AFTER": stale_after})
    assert str(raised.value) == (
        f"IMGSERVE_STALE_AFTER ({stale_after} s) must be at least 6 s: three heartbeats "
        "(one every 2 s), so that a worker whose heartbeat is late once is not taken for gone"
    )


def test_a_stale_limit_of_three_heartbeats_is_taken_whatever_the_time_limits() -> None:
    assert Settings.from_env({}).stale_after == 30
    settings = Settings.from_env({"IMGSERVE_STALE_AFTER": "6", "IMGSERVE_HARD_TIME_LIMIT": "600",
                                  "IMGSERVE_SOFT_TIME_LIMIT": "590"})  # fmt: skip
    assert (settings.stale_after, settings.hard_time_limit) == (6, 600)
