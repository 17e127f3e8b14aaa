"""The Celery app of the supervision benchmark: one task that writes log lines and counts itself.

Loaded by import path (``tests.benchmarks.supervision_app``) by ``sentry-console run worker``;
the broker comes from ``SENTRY_BROKER_URL`` and the queue from ``BENCH_QUEUE``.
"""

from __future__ import annotations

import os

import redis
from celery import Celery
from celery.utils.log import get_task_logger
from kombu import Exchange, Queue

QUEUE = os.environ.get("BENCH_QUEUE", "bench-supervision")
DONE_KEY = f"{QUEUE}:done"
APP_PATH = "tests.benchmarks.supervision_app:app"
#: One log line as a busy task writes it: about 120 bytes once Celery has prefixed it.
LINE = "processed event %05d of batch %s: stored, 3 rules matched, 0 alerts sent"

logger = get_task_logger("bench.chatty")
_counter: redis.Redis | None = None


def make_app(broker_url: str, queue: str) -> Celery:
    """A Celery app on ``broker_url`` with one queue, ``queue``, and the ``bench.chatty`` task."""
    celery_app = Celery("bench-supervision", broker=broker_url, set_as_current=False)
    celery_app.conf.update(
        task_queues=(Queue(queue, Exchange(queue, type="direct"), routing_key=queue),),
        task_default_queue=queue,
        task_default_exchange=queue,
        task_default_routing_key=queue,
        task_ignore_result=True,
        result_backend=None,
        broker_connection_retry_on_startup=True,
        task_serializer="json",
        accept_content=["json"],
    )

    @celery_app.task(name="bench.chatty")
    def chatty(lines: int, batch: str = "-") -> None:
        """Write ``lines`` WARNING log lines, then count one finished task in the broker's db."""
        global _counter
        for number in range(lines):
            logger.warning(LINE, number, batch)
        if _counter is None:
            _counter = redis.Redis.from_url(os.environ["SENTRY_BROKER_URL"])
        _counter.incr(DONE_KEY)

    return celery_app


app = make_app(os.environ.get("SENTRY_BROKER_URL", "redis://127.0.0.1:6379/15"), QUEUE)
