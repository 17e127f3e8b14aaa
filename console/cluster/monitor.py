"""ClusterMonitor: event receiver plus remote-control poller over one bounded ClusterState."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable

from celery import Celery

from console.cluster.control import RemoteControl, RemoteControlError
from console.cluster.errors import DUPLICATE, POLL, ErrorCounts
from console.cluster.models import ClusterSnapshot, TaskInfo
from console.cluster.receiver import EventReceiverThread, describe
from console.cluster.state import ClusterState

#: The first discovery ping waits only this long, so the first screen lists the workers soon
#: after start-up: workers answer within milliseconds on a LAN, and one that misses this round is
#: announced by its heartbeat event (every 2 s) or found by the next full discovery round.
FIRST_PING_TIMEOUT = 0.3


def task_router(app: Celery) -> Callable[[str], str | None]:
    """Map a task name to the queue ``app`` routes it to, as its producers would."""
    router = app.amqp.router

    def route(name: str) -> str | None:
        queue = router.route({}, name).get("queue")
        found = getattr(queue, "name", queue)
        return found if isinstance(found, str) and found else None

    return route


class ClusterMonitor:
    """Watches any Celery app's cluster off the caller's thread; ``snapshot()`` is cheap."""

    def __init__(
        self,
        app: Celery,
        *,
        max_tasks: int = 10_000,
        max_workers: int = 1_000,
        offline_after: float = 10.0,
        drop_offline_after: float = 300.0,
        inspect_timeout: float = 1.0,
        poll_interval: float = 5.0,
        fallback_after: float = 10.0,
        recent_limit: int = 500,
        detail_every: int = 6,
        clock: Callable[[], float] = time.time,
        events: str = "all",
    ) -> None:
        self.app = app
        self.events = events
        """``all``, or ``workers``: worker events only, no task events (and no active tasks)."""
        self.task_events = events == "all"
        self.detail_every = detail_every
        self.poll_interval = poll_interval
        self.fallback_after = fallback_after
        self.recent_limit = recent_limit
        self._clock = clock
        self.state = ClusterState(
            max_tasks=max_tasks,
            max_workers=max_workers,
            offline_after=offline_after,
            drop_offline_after=drop_offline_after,
            clock=clock,
            router=task_router(app),
            task_events=self.task_events,
        )
        self.control = RemoteControl(app, timeout=inspect_timeout)
        self.errors = ErrorCounts()
        self.receiver = EventReceiverThread(
            app, self.state, on_connect=self._on_connect, errors=self.errors, events=events
        )
        self.poll_error: str | None = None
        self.polls = 0
        self._fallback = False
        self._known_workers: set[str] = set()
        self._greeted: set[str] = set()  # workers asked to send task events
        self._stop = threading.Event()
        self._nudge = threading.Event()
        self._poller: threading.Thread | None = None

    def start(self) -> None:
        """Start the event receiver and remote-control poll threads."""
        if self._poller is not None:
            return
        self.receiver.start()
        self._poller = threading.Thread(target=self._poll_loop, name="cluster-poll", daemon=True)
        self._poller.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop both threads, waiting at most about ``timeout`` seconds in all."""
        deadline = time.monotonic() + timeout
        self._stop.set()
        self._nudge.set()
        self.receiver.stop(timeout)
        if self._poller is not None:
            self._poller.join(max(0.0, deadline - time.monotonic()))
        self.control.close_soon()

    def broker_back(self) -> None:
        """The broker answers again: reconnect and poll now instead of after the backoff."""
        self.receiver.wake()
        self._nudge.set()

    @property
    def receiver_state(self) -> str:
        """``listening``, ``connecting``, ``down: <reason>`` or ``inspect`` (fallback in use)."""
        status = self.receiver.status
        if self._fallback and not status.startswith("down"):
            return "inspect"
        return status

    def snapshot(self) -> ClusterSnapshot:
        """Frozen views of workers, active tasks and recent tasks; safe from any thread."""
        snap = self.state.snapshot(self.receiver_state, recent=self.recent_limit)
        return dataclasses.replace(snap, errors=self.errors.counts(), events=self.events)

    def task(self, uuid: str) -> TaskInfo | None:
        """The detail of one task, or None when unknown or evicted."""
        return self.state.task(uuid)

    def _poll_loop(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            self.poll_once()
            elapsed = time.monotonic() - began
            self._nudge.wait(max(0.05, self.poll_interval - elapsed))
            self._nudge.clear()
            if self._stop.is_set():
                break

    def _on_connect(self) -> None:
        """Ask for task events (unless only worker events are followed), and for a heartbeat
        now: its events list the workers at once."""
        if self.task_events:
            self.control.enable_events()
        self.control.heartbeat()

    def _ping(self, destination: list[str] | None) -> dict[str, bool]:
        control = self.control
        if self.polls or destination is not None:
            return control.ping(destination)
        return control.ping(None, timeout=min(control.timeout, FIRST_PING_TIMEOUT))

    def poll_once(self) -> None:
        """One round of ping, active_queues, stats and, when events are silent, inspect active."""
        control = self.control
        try:
            # A full discovery ping waits out the whole timeout; in between, ask only the
            # workers already known (events announce new ones), so the replies end the wait.
            discover = self.polls % self.detail_every == 0 or not self._known_workers
            pinged = self._ping(None if discover else sorted(self._known_workers))
            for name in sorted(control.duplicates):  # Celery only warns in a worker's output
                self.errors.record(DUPLICATE, f"two workers answer as {name}")
            pinged = {host: ok for host, ok in pinged.items() if ok}  # targeted: False if silent
            self.state.note_ping(pinged)
            self._known_workers = set(pinged) | set(self.state.online_workers())
            new = self._known_workers - self._greeted
            if new and self.receiver.status == "listening":
                if self.task_events:
                    control.enable_events()  # workers that joined after we connected
                self._greeted |= new
            if self._stop.is_set():
                return
            # Queues and pool sizes rarely change: ask every few rounds, or when someone new
            # answers; address the known workers so the replies end the wait early.
            online = sorted(h for h, ok in pinged.items() if ok)
            detail = bool(new) or self.polls % self.detail_every == 0
            if online and detail:
                self.state.note_queues(control.inspect("active_queues", online))
                self.state.note_stats(control.inspect("stats", online))
            if self.task_events:  # without them no active tasks are shown: no fallback
                self._check_active(online, detail)
            self.poll_error = None
        except RemoteControlError as exc:
            self.poll_error = str(exc)
            self.errors.record(POLL, self.poll_error)
        except Exception as exc:  # the poller must never die
            self.poll_error = describe(exc)
            self.errors.record(POLL, self.poll_error)
        finally:
            self.polls += 1

    def _check_active(self, online: list[str], detail: bool) -> None:
        """While task events are silent, take the active tasks from ``inspect active``."""
        last = self.state.last_task_event
        quiet = last is None or self._clock() - last > self.fallback_after
        listening = self.receiver.status == "listening"
        if quiet and online and (detail or self._fallback or not listening):
            missing = self.state.note_inspect_active(self.control.inspect("active", online))
            self._fallback = missing > 0 or not listening
        elif not quiet:
            self.state.note_inspect_active(None)
            self._fallback = False
