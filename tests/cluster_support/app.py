"""Test Celery app: sleep, fail and add tasks on a queue named after a per-test suffix.

Workers load it with ``celery -A tests.cluster_support.app``; the broker URL and the
suffix come from ``SC_TEST_BROKER_URL`` and ``SC_TEST_SUFFIX``.
"""

from __future__ import annotations

import os
import time

from celery import Celery


def make_app(broker_url: str, suffix: str) -> Celery:
    """Build the test app; exchanges and the queue carry ``suffix`` so tests never mix."""
    app = Celery(f"cluster-test-{suffix}", broker=broker_url, set_as_current=False)
    app.conf.update(
        task_default_queue=f"cluster-test-{suffix}",
        control_exchange=f"ctl-{suffix}",
        event_exchange=f"ev-{suffix}",
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_send_sent_event=True,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )

    @app.task(name="cluster_test.sleep")
    def sleep(seconds: float) -> float:
        """Sleep ``seconds`` and return it."""
        time.sleep(seconds)
        return seconds

    @app.task(name="cluster_test.fail")
    def fail(message: str) -> None:
        """Raise ValueError(message)."""
        raise ValueError(message)

    @app.task(name="cluster_test.add")
    def add(x: int, y: int) -> int:
        """Return x + y."""
        return x + y

    return app


app = make_app(
    os.environ.get("SC_TEST_BROKER_URL", "redis://127.0.0.1:6379/15"),
    os.environ.get("SC_TEST_SUFFIX", "default"),
)
