"""The cron (beat) schedule: periodic cleanup and a heartbeat, both on the cleanup queue."""

from __future__ import annotations

from typing import Any

from workers.routing import (
    CLEANUP_EVENTS_TASK,
    CLEANUP_QUEUE,
    STORE_HEARTBEAT_TASK,
    queue_name,
)

CLEANUP_INTERVAL = 60.0
HEARTBEAT_INTERVAL = 10.0


def beat_schedule(suffix: str) -> dict[str, dict[str, Any]]:
    """Celery `beat_schedule` for the given queue suffix."""
    queue = queue_name(CLEANUP_QUEUE, suffix)
    # `expires` keeps a backlog from piling up while no worker runs: a stale
    # heartbeat or cleanup is worthless once the next one has been sent.
    return {
        "cleanup-events": {
            "task": CLEANUP_EVENTS_TASK,
            "schedule": CLEANUP_INTERVAL,
            "options": {"queue": queue, "expires": CLEANUP_INTERVAL},
        },
        "store-heartbeat": {
            "task": STORE_HEARTBEAT_TASK,
            "schedule": HEARTBEAT_INTERVAL,
            "options": {"queue": queue, "expires": HEARTBEAT_INTERVAL},
        },
    }
