"""The Celery app of bench_restart_gap.py: one short task that counts its runs per id in Redis.

Environment: ``SENTRY_BROKER_URL`` (the RabbitMQ vhost) and ``GAP_REDIS_URL`` (the counters).
"""

from __future__ import annotations

import os
import time

import redis
from celery import Celery
from kombu import Exchange, Queue

QUEUES = ("gap-console", "gap-supervisord")
RUNS_KEY = "gap:runs"

app = Celery("restartgap")
app.conf.update(
    broker_url=os.environ.get("SENTRY_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//"),
    task_queues=[Queue(q, Exchange(q, type="direct"), routing_key=q) for q in QUEUES],
    task_default_queue=QUEUES[0],
    task_ignore_result=True,
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
)
_counters: redis.Redis | None = None


@app.task(name="gap.work")
def work(task_no: int) -> None:
    """Take 20 ms, then count this run of ``task_no``."""
    global _counters
    if _counters is None:
        _counters = redis.Redis.from_url(os.environ["GAP_REDIS_URL"])
    time.sleep(0.02)
    _counters.hincrby(RUNS_KEY, str(task_no), 1)
