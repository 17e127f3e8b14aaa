"""Frozen views of the cluster that the UI reads: tasks, workers and a whole snapshot."""

from __future__ import annotations

from dataclasses import dataclass, field


def nodesplit(node: str) -> tuple[str | None, str]:
    """A Celery node name as ``(name, host)``; ``(None, node)`` without an ``@``.

    What ``celery.utils.nodenames.nodesplit`` does, here so that plain data needs no celery.
    """
    name, sep, host = node.partition("@")
    return (name, host) if sep else (None, node)


def host_of(node: str) -> str:
    """The host part of a Celery node name (``worker-1@web3`` is ``web3``)."""
    return nodesplit(node)[1] or node


#: Task states in which a task still occupies a worker.
ACTIVE_STATES = frozenset({"RECEIVED", "STARTED"})
#: Task states after which nothing more is expected.
FINISHED_STATES = frozenset({"SUCCESS", "FAILURE", "REVOKED", "REJECTED"})


@dataclass(frozen=True)
class TaskInfo:
    """One task as last seen: reprs of its arguments, timestamps, outcome."""

    uuid: str
    name: str | None
    state: str
    worker: str | None
    args: str
    kwargs: str
    received: float | None
    started: float | None
    finished: float | None
    runtime: float | None
    result: str | None
    exception: str | None
    traceback: str | None
    retries: int


@dataclass(frozen=True)
class WorkerInfo:
    """One worker as last seen through heartbeats, task events and remote control."""

    hostname: str
    online: bool
    last_heartbeat: float | None
    pid: int | None
    active: int
    processed: int
    failed: int
    pool_size: int | None
    queues: tuple[str, ...]
    loadavg: tuple[float, ...] | None
    sw_ident: str | None


@dataclass(frozen=True)
class ClusterSnapshot:
    """Everything the console shows about the cluster at one instant."""

    workers: list[WorkerInfo]
    active_tasks: list[TaskInfo]
    recent_tasks: list[TaskInfo]
    events_received: int
    receiver_state: str
    consumed_queues: frozenset[str]
    enqueued: dict[str, int] = field(default_factory=dict)
    """Tasks sent to each queue so far (from task-sent events), cumulative."""
    dequeued: dict[str, int] = field(default_factory=dict)
    """Tasks workers took from each queue so far (from task-received events), cumulative."""
    errors: dict[str, int] = field(default_factory=dict)
    """Failures survived so far, by kind (see console/cluster/errors.py)."""
    events: str = "all"
    """Events subscribed to: ``all``, or ``workers`` (no task events, so no active tasks)."""
