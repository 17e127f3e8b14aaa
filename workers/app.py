"""The Celery application: `celery -A workers.app worker` / `beat`, configured from the env.

Environment (the console passes these to its children):

- ``SENTRY_BROKER_URL``: broker URL, default ``redis://127.0.0.1:6379/0``; redis, rediss,
  redis+socket, amqp or pyamqp.
- ``SENTRY_QUEUE_SUFFIX``: appended to every queue name (default empty).
- ``SENTRY_VISIBILITY_TIMEOUT``: Redis redelivery timeout in seconds (default 300).
- ``SENTRY_EVENT_STORE``: SQLite event store path (default under ``$XDG_STATE_HOME``).
- ``SENTRY_EVENT_RETENTION_DAYS``: how long events are kept (default 30).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from celery import Celery

from workers.routing import DEFAULT_QUEUE, PROCESS_EVENT_TASK, make_queues, make_routes, queue_name
from workers.schedule import beat_schedule
from workers.settings import WorkerSettings, broker_kind

REDIS_PRIORITY_STEPS = [0, 3, 6, 9]
MAX_PRIORITY = 10


def transport_options(settings: WorkerSettings) -> dict[str, Any]:
    """Broker transport options for the settings' broker.

    On RabbitMQ every publish waits for the broker's confirm: ``process_event`` queues
    ``save_event`` from a pool child, and its task is acked once it returns, so a child killed
    right after an unconfirmed publish (its socket reset with the bytes still unsent) would
    lose the event. On Redis the publish is a command with a reply already.
    """
    if broker_kind(settings.broker_url) != "redis":
        return {"confirm_publish": True}
    return {
        "priority_steps": list(REDIS_PRIORITY_STEPS),
        "sep": ":",
        "queue_order_strategy": "priority",
        "visibility_timeout": settings.visibility_timeout,
    }


def make_config(settings: WorkerSettings) -> dict[str, Any]:
    """The complete Celery configuration for `settings`."""
    suffix = settings.queue_suffix
    config: dict[str, Any] = {
        "broker_url": settings.broker_url,
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": transport_options(settings),
        "result_backend": None,
        "task_ignore_result": True,
        "task_queues": make_queues(suffix),
        "task_default_queue": queue_name(DEFAULT_QUEUE, suffix),
        "task_default_exchange": queue_name(DEFAULT_QUEUE, suffix),
        "task_default_routing_key": queue_name(DEFAULT_QUEUE, suffix),
        "task_routes": make_routes(suffix),
        # No lost work: ack after the task ran, give it back if the worker dies under it.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        # With late acks each process holds at most the one message it is running, so a
        # stopped or killed worker strands nothing and scaling spreads work evenly.
        "worker_prefetch_multiplier": 1,
        # With late acks an unacked task is redelivered after a connection loss anyway;
        # cancelling the running copy avoids running it twice.
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        "task_serializer": "json",
        "accept_content": ["json"],
        "timezone": "UTC",
        "enable_utc": True,
        "beat_schedule": beat_schedule(suffix),
        "console_ingest_task": PROCESS_EVENT_TASK,
        "sentry_event_store": str(settings.event_store_path),
        "sentry_event_retention_days": settings.retention_days,
    }
    if broker_kind(settings.broker_url) == "amqp":
        config["task_queue_max_priority"] = MAX_PRIORITY
        config["task_default_priority"] = 0
    return config


def make_app(env: Mapping[str, str], main: str = "workers") -> Celery:
    """A Celery app for the event pipeline, configured from `env` alone."""
    settings = WorkerSettings.from_env(env)
    celery_app = Celery(main, include=["workers.tasks"])
    celery_app.conf.update(make_config(settings))
    return celery_app


app = make_app(os.environ)
