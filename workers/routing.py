"""Queue names and task routes; every queue name carries the configured suffix."""

from __future__ import annotations

from kombu import Exchange, Queue

DEFAULT_QUEUE = "default"
PROCESS_EVENT_QUEUE = "events.process_event"
SAVE_EVENT_QUEUE = "events.save_event"
CLEANUP_QUEUE = "cleanup"
BASE_QUEUES = (DEFAULT_QUEUE, PROCESS_EVENT_QUEUE, SAVE_EVENT_QUEUE, CLEANUP_QUEUE)

PROCESS_EVENT_TASK = "workers.process_event"
SAVE_EVENT_TASK = "workers.save_event"
CLEANUP_EVENTS_TASK = "workers.cleanup_events"
STORE_HEARTBEAT_TASK = "workers.store_heartbeat"

TASK_QUEUES = {
    PROCESS_EVENT_TASK: PROCESS_EVENT_QUEUE,
    SAVE_EVENT_TASK: SAVE_EVENT_QUEUE,
    CLEANUP_EVENTS_TASK: CLEANUP_QUEUE,
    STORE_HEARTBEAT_TASK: CLEANUP_QUEUE,
}


def queue_name(base: str, suffix: str) -> str:
    """The real name of queue `base` once `suffix` is appended."""
    return f"{base}{suffix}"


def queue_names(suffix: str) -> list[str]:
    """All queue names the workers consume, suffix applied, in a stable order."""
    return [queue_name(base, suffix) for base in BASE_QUEUES]


def make_queues(suffix: str) -> tuple[Queue, ...]:
    """kombu Queue declarations, each bound to a direct exchange of the same name."""
    return tuple(
        Queue(name, Exchange(name, type="direct"), routing_key=name) for name in queue_names(suffix)
    )


def make_routes(suffix: str) -> dict[str, dict[str, str]]:
    """Celery `task_routes`: each task to its own queue."""
    return {task: {"queue": queue_name(base, suffix)} for task, base in TASK_QUEUES.items()}
