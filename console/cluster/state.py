"""Bounded record of tasks and workers, fed by Celery event dicts and remote-control replies."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from console.cluster.models import FINISHED_STATES, ClusterSnapshot, TaskInfo
from console.cluster.workers import WorkerTable

log = logging.getLogger("sentry_console.cluster")

ARG_LIMIT = 2048
TEXT_LIMIT = 8192
SHARED_LIMIT = 16

Event = Mapping[str, Any]
#: Called for each task event once applied: (type, task name, event hostname, task queue, event).
TaskEventHook = Callable[[str, str | None, str | None, str | None, Event], None]


def clip(value: Any, limit: int) -> str:
    """Return ``value`` as text of at most ``limit`` characters (reprs if it is not a string);
    a short one is shared (``{}``, ``None`` and ``()`` are most tasks' kwargs, result, args)."""
    text = value if isinstance(value, str) else repr(value)
    if len(text) <= SHARED_LIMIT:
        return sys.intern(text)
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def shared(value: Any) -> Any:
    """One string object per distinct task name, worker or queue across the kept tasks (each
    event decodes its own copy; 10,000 tasks would hold 10,000 of each), other values as given."""
    return sys.intern(value) if type(value) is str else value


class _Task:
    """Mutable per-task record; updated in place so an event allocates nothing new."""

    __slots__ = (
        "args",
        "exception",
        "finished",
        "kwargs",
        "name",
        "queue",
        "received",
        "result",
        "retries",
        "runtime",
        "started",
        "state",
        "traceback",
        "uuid",
        "view",
        "worker",
    )

    def __init__(self, uuid: str) -> None:
        self.uuid = uuid
        self.name: str | None = None
        self.queue: str | None = None
        self.state = "PENDING"
        self.worker: str | None = None
        self.args = ""
        self.kwargs = ""
        self.received: float | None = None
        self.started: float | None = None
        self.finished: float | None = None
        self.runtime: float | None = None
        self.result: str | None = None
        self.exception: str | None = None
        self.traceback: str | None = None
        self.retries = 0
        self.view: TaskInfo | None = None

    def freeze(self) -> TaskInfo:
        """Return (and cache until the next change) the frozen view of this record."""
        view = self.view
        if view is None:
            view = self.view = TaskInfo(
                self.uuid, self.name, self.state, self.worker, self.args, self.kwargs,
                self.received, self.started, self.finished, self.runtime,
                self.result, self.exception, self.traceback, self.retries,
            )  # fmt: skip
        return view


class ClusterState:
    """Bounded, thread-safe state: at most ``max_tasks`` tasks and ``max_workers`` workers."""

    def __init__(
        self,
        *,
        max_tasks: int = 10_000,
        max_workers: int = 1_000,
        offline_after: float = 10.0,
        drop_offline_after: float = 300.0,
        clock: Callable[[], float] = time.time,
        router: Callable[[str], str | None] | None = None,
        max_queues: int = 10_000,
        task_events: bool = True,
    ) -> None:
        if max_tasks < 1 or max_workers < 1:
            raise ValueError("max_tasks and max_workers must be at least 1")
        self.max_tasks = max_tasks
        self._clock = clock
        self._lock = threading.Lock()
        self._tasks: OrderedDict[str, _Task] = OrderedDict()  # least recently updated first
        self._finished: OrderedDict[str, None] = OrderedDict()  # in order of finishing
        self._active: dict[str, _Task] = {}
        self._inspect_active: dict[str, TaskInfo] = {}
        self.workers = WorkerTable(
            max_workers, offline_after, drop_offline_after, from_heartbeats=not task_events
        )
        self.events_received = 0
        self.last_task_event: float | None = None
        self._router = router
        self._routes: dict[str, str | None] = {}
        self.max_queues = max_queues
        self.enqueued: dict[str, int] = {}  # task-sent per queue, cumulative
        self.dequeued: dict[str, int] = {}  # task-received per queue, cumulative
        self.on_task_event: TaskEventHook | None = None
        """Optional hook (metrics): called under the state's lock, so it must be O(1)."""
        self._task_handlers: dict[str, Callable[[_Task, Event, float], None]] = {
            "task-sent": self._on_sent,
            "task-received": self._on_received,
            "task-started": self._on_started,
            "task-succeeded": self._on_succeeded,
            "task-failed": self._on_failed,
            "task-retried": self._on_retried,
            "task-revoked": self._on_revoked,
            "task-rejected": self._on_rejected,
        }

    # ---- ingestion (hot path) -------------------------------------------------------------

    def apply(self, event: Event) -> None:
        """Record one Celery event dict."""
        self.apply_many((event,))

    def apply_many(self, events: Iterable[Event]) -> None:
        """Record a batch of Celery event dicts under one lock acquisition (the hot path)."""
        with self._lock:
            now = self._clock()
            tasks = self._tasks
            handlers = self._task_handlers
            workers = self.workers
            hook = self.on_task_event
            seen: dict[str, None] = {}  # hosts heard from, noted once per batch
            count = 0
            task_events = False
            for event in events:
                count += 1
                if not isinstance(event, dict):
                    continue
                kind = event.get("type")
                handler = handlers.get(kind)  # type: ignore[arg-type]
                if handler is not None:
                    uuid = event.get("uuid")
                    if not isinstance(uuid, str):
                        continue
                    task = tasks.get(uuid)
                    if task is None:
                        task = tasks[uuid] = _Task(uuid)
                        if len(tasks) > self.max_tasks:
                            self._evict()
                    else:
                        tasks.move_to_end(uuid)
                        task.view = None
                    handler(task, event, now)
                    task_events = True
                    hostname = event.get("hostname")
                    if hook is not None:
                        hook(kind, task.name, hostname, task.queue, event)  # type: ignore[arg-type]
                    if hostname and kind != "task-sent":
                        seen[hostname] = None
                elif isinstance(kind, str) and kind.startswith("worker-"):
                    hostname = event.get("hostname")
                    if isinstance(hostname, str):
                        self._note_seen(seen, now)  # keep the order against worker-offline
                        workers.on_event(kind, hostname, event, now)
            self._note_seen(seen, now)
            self.events_received += count
            if task_events:
                self.last_task_event = now

    def _note_seen(self, seen: dict[str, None], now: float) -> None:
        for hostname in seen:
            self.workers.seen(hostname, now)
        seen.clear()

    def _evict(self) -> None:
        tasks = self._tasks
        while len(tasks) > self.max_tasks:
            if self._finished:
                uuid, _ = self._finished.popitem(last=False)
                tasks.pop(uuid, None)
            else:
                uuid, _ = tasks.popitem(last=False)
                self._active.pop(uuid, None)

    def _activate(self, task: _Task, state: str) -> None:
        if task.state in FINISHED_STATES:
            return  # a late event never reopens a finished task
        task.state = state
        self._active[task.uuid] = task

    def _finish(self, task: _Task, state: str, event: Event) -> None:
        first = task.state not in FINISHED_STATES
        task.state = state
        task.finished = event.get("timestamp")
        worker = shared(event.get("hostname")) or task.worker
        if worker:
            task.worker = worker
        if first:
            self._active.pop(task.uuid, None)
            self._finished[task.uuid] = None
            if worker and state in ("SUCCESS", "FAILURE"):
                self.workers.count_finished(worker, state == "FAILURE")

    def _count(self, counters: dict[str, int], queue: str) -> None:
        if queue in counters:
            counters[queue] += 1
        elif len(counters) < self.max_queues:
            counters[queue] = 1

    def _route(self, name: str | None) -> str | None:
        """The queue the app routes task ``name`` to (cached; None when unknown)."""
        if name is None or self._router is None:
            return None
        routes = self._routes
        if name not in routes:
            if len(routes) >= self.max_queues:
                routes.clear()
            try:
                routes[name] = self._router(name)
            except Exception as exc:  # a custom router that fails tells us nothing
                log.warning("the app's task router failed for %s: %s", name, exc)
                routes[name] = None  # cached: logged once per task name
        return routes[name]

    def _on_sent(self, task: _Task, event: Event, now: float) -> None:
        if task.name is None:
            task.name = shared(event.get("name"))
            task.args = clip(event.get("args", ""), ARG_LIMIT)
            task.kwargs = clip(event.get("kwargs", ""), ARG_LIMIT)
        queue = event.get("queue") or self._route(task.name)
        if isinstance(queue, str) and queue:
            task.queue = shared(queue)
            self._count(self.enqueued, queue)

    def _on_received(self, task: _Task, event: Event, now: float) -> None:
        task.name = shared(event.get("name")) or task.name
        queue = task.queue or self._route(task.name)
        if queue is not None:
            task.queue = queue
            self._count(self.dequeued, queue)
        task.args = clip(event.get("args", ""), ARG_LIMIT)
        task.kwargs = clip(event.get("kwargs", ""), ARG_LIMIT)
        task.retries = event.get("retries") or 0
        task.received = event.get("timestamp")
        task.worker = shared(event.get("hostname")) or task.worker
        if task.state == "RETRY":
            task.exception = task.traceback = None
        if task.state != "STARTED":
            self._activate(task, "RECEIVED")

    def _on_started(self, task: _Task, event: Event, now: float) -> None:
        task.started = event.get("timestamp")
        task.worker = shared(event.get("hostname")) or task.worker
        self._activate(task, "STARTED")

    def _on_succeeded(self, task: _Task, event: Event, now: float) -> None:
        task.result = clip(event.get("result", ""), TEXT_LIMIT)
        task.runtime = event.get("runtime")
        self._finish(task, "SUCCESS", event)

    def _on_failed(self, task: _Task, event: Event, now: float) -> None:
        task.exception = clip(event.get("exception", ""), TEXT_LIMIT)
        task.traceback = clip(event.get("traceback", ""), TEXT_LIMIT)
        self._finish(task, "FAILURE", event)

    def _on_retried(self, task: _Task, event: Event, now: float) -> None:
        task.exception = clip(event.get("exception", ""), TEXT_LIMIT)
        task.traceback = clip(event.get("traceback", ""), TEXT_LIMIT)
        if task.state not in FINISHED_STATES:
            task.state = "RETRY"
            self._active.pop(task.uuid, None)

    def _on_revoked(self, task: _Task, event: Event, now: float) -> None:
        if event.get("terminated"):
            task.exception = f"terminated by signal {event.get('signum')}"
        elif event.get("expired"):
            task.exception = "expired"
        self._finish(task, "REVOKED", event)

    def _on_rejected(self, task: _Task, event: Event, now: float) -> None:
        self._finish(task, "REJECTED", event)

    # ---- remote-control replies -------------------------------------------------------------

    def note_ping(self, replies: Mapping[str, Any]) -> None:
        """Mark every worker that answered a ping as alive now."""
        with self._lock:
            now = self._clock()
            for hostname in replies:
                self.workers.seen(hostname, now)

    def note_stats(self, replies: Mapping[str, Any]) -> None:
        """Take pool size, pid and totals from ``inspect stats`` replies."""
        with self._lock:
            now = self._clock()
            for hostname, stats in replies.items():
                if isinstance(stats, Mapping):
                    self.workers.note_stats(hostname, stats, now)

    def note_queues(self, replies: Mapping[str, Any]) -> None:
        """Take the consumed queue names from ``inspect active_queues`` replies."""
        with self._lock:
            now = self._clock()
            for hostname, queues in replies.items():
                names = tuple(
                    sorted(str(q.get("name")) for q in queues or () if isinstance(q, Mapping))
                )
                self.workers.note_queues(hostname, names, now)

    def note_inspect_active(self, replies: Mapping[str, Any] | None) -> int:
        """Hold ``inspect active`` replies as fallback active tasks; return how many events miss."""
        found: dict[str, TaskInfo] = {}
        for hostname, requests in (replies or {}).items():
            for request in requests or ():
                if isinstance(request, Mapping) and request.get("id"):
                    found[str(request["id"])] = _task_from_request(hostname, request)
        with self._lock:
            self._inspect_active = found
            return sum(1 for uuid in found if uuid not in self._active)

    # ---- reading --------------------------------------------------------------------------

    def task(self, uuid: str) -> TaskInfo | None:
        """Return the frozen view of one task, or None when it is unknown or evicted."""
        with self._lock:
            record = self._tasks.get(uuid)
            if record is not None:
                return record.freeze()
            return self._inspect_active.get(uuid)

    def snapshot(self, receiver_state: str, *, recent: int = 500) -> ClusterSnapshot:
        """Build frozen views of workers, active tasks and the ``recent`` latest tasks."""
        with self._lock:
            now = self._clock()
            active = [task.freeze() for task in self._active.values()]
            known = {info.uuid for info in active}
            active.extend(i for u, i in self._inspect_active.items() if u not in known)
            per_worker: dict[str, int] = {}
            for info in active:
                if info.worker:
                    per_worker[info.worker] = per_worker.get(info.worker, 0) + 1
            workers, consumed = self.workers.views(now, per_worker)
            recent_tasks: list[TaskInfo] = []
            for uuid in reversed(self._tasks):
                if len(recent_tasks) >= recent:
                    break
                recent_tasks.append(self._tasks[uuid].freeze())
            events = self.events_received
            enqueued, dequeued = dict(self.enqueued), dict(self.dequeued)
        active.sort(key=lambda info: info.started or info.received or 0.0)
        return ClusterSnapshot(
            workers, active, recent_tasks, events, receiver_state, consumed, enqueued, dequeued
        )

    def online_workers(self) -> list[str]:
        """Hostnames of the workers currently considered online."""
        with self._lock:
            return self.workers.online(self._clock())

    def counts(self) -> tuple[int, int, int]:
        """Return (tasks held, active tasks, finished tasks held), for tests and diagnostics."""
        with self._lock:
            return len(self._tasks), len(self._active), len(self._finished)


def _task_from_request(hostname: str, request: Mapping[str, Any]) -> TaskInfo:
    """Build a TaskInfo from one request dict of an ``inspect active`` reply."""
    started = request.get("time_start")
    return TaskInfo(
        uuid=str(request["id"]),
        name=request.get("name"),
        state="STARTED",
        worker=hostname,
        args=clip(request.get("args", ()), ARG_LIMIT),
        kwargs=clip(request.get("kwargs", {}), ARG_LIMIT),
        received=None,
        started=float(started) if isinstance(started, int | float) else None,
        finished=None,
        runtime=None,
        result=None,
        exception=None,
        traceback=None,
        retries=0,
    )
