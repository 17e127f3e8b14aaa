"""The Celery app's configuration from the environment, its beat schedule, and its cron tasks."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from celery import Celery
from celery.app.utils import find_app
from kombu import Queue

from workers.app import make_app
from workers.settings import SettingsError, broker_kind
from workers.store import store_at
from workers.tasks import cleanup_events, store_heartbeat

QUEUES = ["default", "events.process_event", "events.save_event", "cleanup"]


def test_module_app_is_found_the_way_celery_finds_it() -> None:
    found = find_app("workers.app")
    assert isinstance(found, Celery)
    import workers.app

    assert found is workers.app.app


def _fresh_python(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout.strip()


def test_symbol_by_name_finds_the_app_in_a_fresh_process() -> None:
    code = (
        "from celery import Celery\n"
        "from celery.utils.imports import symbol_by_name\n"
        "found = symbol_by_name('workers.app')\n"
        "print(isinstance(getattr(found, 'app', found), Celery))\n"
    )
    assert _fresh_python(code) == "True"


def test_pipeline_modules_do_not_build_an_app() -> None:
    code = "import sys, workers.events, workers.store\nprint('workers.app' in sys.modules)"
    assert _fresh_python(code) == "False"


def test_defaults(tmp_path: Path) -> None:
    app = make_app({"HOME": str(tmp_path)})
    conf = app.conf
    assert conf.broker_url == "redis://127.0.0.1:6379/0"
    assert [q.name for q in conf.task_queues] == QUEUES
    assert all(isinstance(q, Queue) for q in conf.task_queues)
    assert conf.task_default_queue == "default"
    assert conf.sentry_event_store == str(
        tmp_path / ".local" / "state" / "sentry-console" / "events.sqlite3"
    )
    assert conf.console_ingest_task == "workers.process_event"
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_send_task_events is True
    assert conf.task_send_sent_event is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.broker_connection_retry_on_startup is True
    assert conf.task_ignore_result is True
    assert conf.result_backend is None
    assert conf.broker_transport_options == {
        "priority_steps": [0, 3, 6, 9],
        "sep": ":",
        "queue_order_strategy": "priority",
        "visibility_timeout": 300,
    }


def test_suffix_applies_to_every_queue_and_route(unique: str) -> None:
    suffix = f"-{unique}"
    app = make_app({"SENTRY_QUEUE_SUFFIX": suffix, "SENTRY_VISIBILITY_TIMEOUT": "42"})
    assert [q.name for q in app.conf.task_queues] == [name + suffix for name in QUEUES]
    assert app.conf.task_default_queue == "default" + suffix
    assert app.conf.broker_transport_options["visibility_timeout"] == 42
    app.loader.import_default_modules()
    expected = {
        "workers.process_event": "events.process_event",
        "workers.save_event": "events.save_event",
        "workers.cleanup_events": "cleanup",
        "workers.store_heartbeat": "cleanup",
    }
    for task, queue in expected.items():
        assert task in app.tasks
        assert app.amqp.router.route({}, task)["queue"].name == queue + suffix


def test_xdg_state_home_is_used(tmp_path: Path) -> None:
    app = make_app({"XDG_STATE_HOME": str(tmp_path)})
    assert app.conf.sentry_event_store == str(tmp_path / "sentry-console" / "events.sqlite3")


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("redis://:secret@localhost:6379/0", "redis"),
        ("rediss://localhost:6380/0", "redis"),
        ("redis+socket:///run/redis.sock", "redis"),
        ("amqp://guest:guest@localhost:5672/sentry", "amqp"),
        ("pyamqp://guest@localhost//", "amqp"),
    ],
)
def test_broker_schemes(url: str, kind: str) -> None:
    assert broker_kind(url) == kind
    app = make_app({"SENTRY_BROKER_URL": url})
    assert app.conf.broker_url == url
    options = app.conf.broker_transport_options
    if kind == "redis":
        assert options["queue_order_strategy"] == "priority"
    else:
        assert options == {"confirm_publish": True}  # a publish waits for the broker
        assert app.conf.task_queue_max_priority == 10
    # kombu accepts the URL and the options (no connection is made here).
    with app.connection_for_write() as conn:
        assert conn.transport_options == options


@pytest.mark.parametrize(
    "env",
    [
        {"SENTRY_VISIBILITY_TIMEOUT": "soon"},
        {"SENTRY_VISIBILITY_TIMEOUT": "-5"},
        {"SENTRY_EVENT_RETENTION_DAYS": "0"},
        {"SENTRY_EVENT_RETENTION_DAYS": "inf"},
    ],
)
def test_bad_env_values_give_one_clear_error(env: dict[str, str]) -> None:
    with pytest.raises(SettingsError, match=next(iter(env))):
        make_app(env)


def test_beat_schedule_has_both_periodic_tasks_on_cleanup_queue(unique: str) -> None:
    app = make_app({"SENTRY_QUEUE_SUFFIX": f"-{unique}"})
    schedule = app.conf.beat_schedule
    by_task = {entry["task"]: entry for entry in schedule.values()}
    assert set(by_task) == {"workers.cleanup_events", "workers.store_heartbeat"}
    assert by_task["workers.cleanup_events"]["schedule"] == 60.0
    assert by_task["workers.store_heartbeat"]["schedule"] == 10.0
    for entry in by_task.values():
        assert entry["options"]["queue"] == f"cleanup-{unique}"


def test_periodic_tasks_called_directly(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite3"
    make_app({"SENTRY_EVENT_STORE": str(path), "SENTRY_EVENT_RETENTION_DAYS": "1"})
    store = store_at(path)
    now = time.time()
    base = {"project": "p", "level": "error", "message": "m", "fingerprint": "f"}
    store.save({**base, "event_id": "a" * 32, "timestamp": now, "received": now - 2 * 86_400})
    store.save({**base, "event_id": "b" * 32, "timestamp": now, "received": now - 3600})

    assert cleanup_events() == 1
    assert store.count() == 1
    assert cleanup_events() == 0

    before = time.time()
    recorded = store_heartbeat()
    assert before <= recorded <= time.time()
    assert store.last_heartbeat() == recorded
