"""A Celery app with one task on a one-second schedule, sent to ``CRON_TEST_QUEUE``."""

from __future__ import annotations

import os

from celery import Celery
from kombu import Exchange, Queue

QUEUE = os.environ.get("CRON_TEST_QUEUE", "cron-test")
TASK = "cronapp.tick"

app = Celery("cronapp")
app.conf.update(
    broker_url=os.environ.get("SENTRY_BROKER_URL", "redis://127.0.0.1:6379/0"),
    broker_connection_retry_on_startup=True,
    task_queues=[Queue(QUEUE, Exchange(QUEUE, type="direct"), routing_key=QUEUE)],
    task_default_queue=QUEUE,
    task_default_exchange=QUEUE,
    task_default_routing_key=QUEUE,
    task_ignore_result=True,
    beat_schedule={"tick": {"task": TASK, "schedule": 1.0, "options": {"queue": QUEUE}}},
    timezone="UTC",
)


@app.task(name=TASK)
def tick() -> None:
    """Does nothing: the tests count the messages, never run them."""
