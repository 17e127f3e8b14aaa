"""Test app whose Redis transport has a key prefix and ten priority steps, like a tuned Sentry.

Workers and ``--app`` load the module's ``app``, built from ``SC_TEST_BROKER_URL``,
``SC_TEST_SUFFIX`` and ``SC_TEST_KEYPREFIX``; tests build their own with :func:`make_app`.
"""

from __future__ import annotations

import os

from celery import Celery


def queue_name(suffix: str) -> str:
    """The app's only queue."""
    return f"prio-{suffix}"


def make_app(broker_url: str, suffix: str, prefix: str) -> Celery:
    """The app: default queue ``prio-SUFFIX`` with priorities 0-9, every key behind ``prefix``."""
    app = Celery(f"prio-test-{suffix}", broker=broker_url, set_as_current=False)
    app.conf.update(
        task_default_queue=queue_name(suffix),
        task_queue_max_priority=10,
        task_default_priority=0,
        broker_transport_options={
            "global_keyprefix": prefix,
            "priority_steps": list(range(10)),
            "sep": ":",
            "queue_order_strategy": "priority",
        },
        control_exchange=f"ctl-{suffix}",
        event_exchange=f"ev-{suffix}",
        broker_connection_retry_on_startup=True,
    )

    @app.task(name="prio_test.noop")
    def noop(n: int) -> int:
        """Return ``n`` (never run: nothing consumes this queue in the tests)."""
        return n

    return app


app = make_app(
    os.environ.get("SC_TEST_BROKER_URL", "redis://127.0.0.1:6379/15"),
    os.environ.get("SC_TEST_SUFFIX", "default"),
    os.environ.get("SC_TEST_KEYPREFIX", "pfx:"),
)
