"""The Celery app every compared tool watches: 20 queues and one counting task.

Loaded by import path (``tests.benchmarks.compare.benchapp``) by the console's workers,
Flower, ``celery events`` and supervisord alike; the broker comes from ``SENTRY_BROKER_URL``.
"""

from __future__ import annotations

import os

import redis
from celery import Celery
from kombu import Exchange, Queue

QUEUES = tuple(f"bench-q{n:02d}" for n in range(20))
TICKS_KEY = "bench:ticks"
APP_PATH = "tests.benchmarks.compare.benchapp:app"

_counter: redis.Redis | None = None


def make_app(broker_url: str) -> Celery:
    """A Celery app on ``broker_url`` with 20 direct queues and the ``bench.tick`` task."""
    celery_app = Celery("bench", broker=broker_url, set_as_current=False)
    celery_app.conf.update(
        task_queues=tuple(Queue(q, Exchange(q, type="direct"), routing_key=q) for q in QUEUES),
        task_default_queue=QUEUES[0],
        task_default_exchange=QUEUES[0],
        task_default_routing_key=QUEUES[0],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        result_backend=None,
        broker_connection_retry_on_startup=True,
        worker_send_task_events=True,
        task_serializer="json",
        accept_content=["json"],
    )

    @celery_app.task(name="bench.tick")
    def tick() -> None:
        """Count one processed task in the broker's database."""
        global _counter
        if _counter is None:
            _counter = redis.Redis.from_url(os.environ["SENTRY_BROKER_URL"])
        _counter.incr(TICKS_KEY)

    return celery_app


app = make_app(os.environ.get("SENTRY_BROKER_URL", "redis://127.0.0.1:6379/15"))
