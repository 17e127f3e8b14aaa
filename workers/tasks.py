"""The event pipeline tasks and the periodic cron tasks.

``workers.process_event`` validates and normalises a raw event (shape documented in
``workers.events``) and hands it to ``workers.save_event``, which writes it to the SQLite
event store. A malformed event is logged and dropped, never retried.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from celery import Task, shared_task
from celery.exceptions import Reject
from celery.utils.log import get_task_logger
from kombu.exceptions import OperationalError as BrokerError

from workers.events import InvalidEvent, normalise_event
from workers.routing import (
    CLEANUP_EVENTS_TASK,
    PROCESS_EVENT_TASK,
    SAVE_EVENT_TASK,
    STORE_HEARTBEAT_TASK,
)
from workers.settings import DEFAULT_RETENTION_DAYS
from workers.store import EventStore, store_at

logger = get_task_logger(__name__)

DAY = 86_400.0


def task_store(task: Task) -> EventStore:
    """The event store named by the configuration of the app running `task`."""
    return store_at(task.app.conf.sentry_event_store)


def _event_id_hint(event: Any) -> str:
    if isinstance(event, dict):
        return repr(event.get("event_id"))[:80]
    return f"<{type(event).__name__}>"


@shared_task(bind=True, name=PROCESS_EVENT_TASK, acks_late=True)
def process_event(self: Task, event: dict[str, Any]) -> str | None:
    """Normalise a raw event and queue it for saving; return its event id, None if dropped."""
    try:
        normalised = normalise_event(event)
    except InvalidEvent as exc:
        logger.warning("dropping malformed event %s: %s", _event_id_hint(event), exc)
        return None
    try:
        save_event.delay(normalised)
    except BrokerError as exc:
        # Not acked: the broker gives the raw event back, so nothing is lost.
        raise Reject(f"cannot queue save_event: {exc}", requeue=True) from exc
    return str(normalised["event_id"])


@shared_task(
    bind=True,
    name=SAVE_EVENT_TASK,
    acks_late=True,
    autoretry_for=(sqlite3.OperationalError,),
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=10,
)
def save_event(self: Task, event: dict[str, Any]) -> bool:
    """Write a normalised event to the store; return False when it was already there."""
    created = task_store(self).save(event)
    if not created:
        logger.info("event %s already stored", event.get("event_id"))
    return created


@shared_task(bind=True, name=CLEANUP_EVENTS_TASK, acks_late=True)
def cleanup_events(self: Task) -> int:
    """Delete events older than the retention period; return how many were deleted."""
    days = float(getattr(self.app.conf, "sentry_event_retention_days", DEFAULT_RETENTION_DAYS))
    deleted = task_store(self).delete_older_than(time.time() - days * DAY)
    if deleted:
        logger.info("deleted %d events older than %g days", deleted, days)
    return deleted


@shared_task(bind=True, name=STORE_HEARTBEAT_TASK, acks_late=True)
def store_heartbeat(self: Task) -> float:
    """Record that the cron pipeline is alive; return the recorded time."""
    now = time.time()
    task_store(self).record_heartbeat(now)
    return now
