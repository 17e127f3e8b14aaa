"""A Celery beat scheduler that sends only while it holds the broker lease, each slot once.

Run every cron process with it (``celery beat -S console.cron.scheduler:CoordinatedScheduler``;
``sentry-console run cron`` does so unless ``CONSOLE_CRON_COORDINATION`` is off). The schedule
state lives in the broker, not in the local ``celerybeat-schedule`` file, so the processes
agree on which slot was sent last whichever host they run on.

App settings read: ``console_cron_takeover`` (seconds, default 5),
``console_cron_state_dir`` (where the role file goes; none when unset) and
``console_cron_name`` (the lease's name; see ``lock_name``).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from celery.beat import Scheduler

from console.broker.urls import BrokerURLError, parse_broker_url
from console.cron import role as roles
from console.cron.coordinator import make_coordinator
from console.cron.lease import BrokerUnavailable, Coordinator, LeaseTiming
from console.cron.slots import due_slot, next_check, record_ttl

logger = logging.getLogger("console.cron")

DEFAULT_TAKEOVER = 5.0
SLOT_HEADER = "console_cron_slot"
"""Message header: the slot (epoch seconds) a send stands for."""
AFTER_HEADER = "console_cron_after"
"""Message header: the previous slot sent; the send covers every slot after it up to its own."""
SENDER_HEADER = "console_cron_sender"
"""Message header: host and pid of the cron process that sent it."""


def schedule_digest(entries: Iterable[Any]) -> str:
    """A short digest of a schedule's identity: its entries' names and tasks."""
    keys = sorted(f"{entry.name}\0{entry.task}" for entry in entries)
    return hashlib.sha256("\n".join(keys).encode()).hexdigest()[:12]


def lock_name(app: Any, digest: str) -> str:
    """What separates one app's crons from another's on a shared broker.

    ``console_cron_name`` (``CONSOLE_CRON_NAME``) when set; else the app's name, default queue
    and schedule digest, so two apps left at Celery's defaults (``celery:celery``) on one
    broker never share a lease (the follower's entries would never be sent).
    """
    name = app.conf.get("console_cron_name")
    if name:
        return str(name)
    return f"{app.main or 'celery'}:{app.conf.task_default_queue or 'celery'}:{digest}"


class CoordinatedScheduler(Scheduler):
    """Beat scheduler: one leader among all cron processes on a broker sends each slot once."""

    def setup_schedule(self) -> None:
        """Load the entries and connect the coordinator (no broker round trip yet)."""
        super().setup_schedule()
        conf = self.app.conf
        self.timing = LeaseTiming(float(conf.get("console_cron_takeover") or DEFAULT_TAKEOVER))
        state_dir = conf.get("console_cron_state_dir")
        self.state_dir = Path(state_dir) if state_dir else None
        self.role = ""
        self.coordinator: Coordinator | None = None
        self.digest = schedule_digest(self.schedule.values())
        self.lease = lock_name(self.app, self.digest)
        self._conflicts: set[str] = set()
        self._publishing: tuple[Any, Any] | None = None
        self._remembered: dict[str, float] = {}
        """The last slot this process read or recorded per entry: what survives a lost record."""
        try:
            url = parse_broker_url(str(conf.broker_url))
        except BrokerURLError as exc:
            logger.error("cron: cannot coordinate: %s", exc)
        else:
            self.coordinator = make_coordinator(url, self.lease, self.timing, self.digest)
        self._sender = f"{os.uname().nodename}:{os.getpid()}"
        if self.state_dir is not None:
            roles.prune_roles(self.state_dir)

    def _set_role(self, role: str, detail: str) -> None:
        if role != self.role:
            text = f"{role} ({detail})" if detail else role
            logger.warning("cron role: %s -> %s", self.role or "starting", text)
            self.role = role
            if self.state_dir is not None:
                roles.write_role(self.state_dir, os.getpid(), role, detail)

    def _refresh(self) -> bool:
        assert self.coordinator is not None
        try:
            state = self.coordinator.refresh()
        except BrokerUnavailable as exc:
            self._set_role(roles.NO_BROKER, str(exc))
            return False
        if state.schedule and state.schedule != self.digest:
            self._conflict(state.schedule)
        if state.leader:
            if self.role != roles.LEADER:
                # The publishing connection may have died while this process did not lead
                # (an outage, a freeze): the first send, often the catch-up, must not fail on it.
                self._drop_producer()
            self._set_role(roles.LEADER, f"term {state.term}" if state.term else "")
        else:
            self._set_role(roles.STANDBY, f"leader is {state.holder}" if state.holder else "")
        return state.leader

    def _conflict(self, other: str) -> None:
        if other in self._conflicts:
            return
        self._conflicts.add(other)
        logger.warning(
            "cron: lease %s is claimed by crons with different schedules (this one %s, another "
            "%s): only the leader's entries are sent; give each app its own CONSOLE_CRON_NAME",
            self.lease,
            self.digest,
            other,
        )

    def tick(self, *args: Any, **kwargs: Any) -> float:
        """Check the lease, send what fell due while leading; return seconds to sleep."""
        if self.coordinator is None:
            return self.timing.poll
        if not self._refresh():
            # Wait on the broker rather than in beat's sleep: a warm stop elsewhere wakes us.
            if self.role == roles.STANDBY:
                self.coordinator.wait(self.timing.poll)
                return 0.01
            return self.timing.poll
        wait = self.timing.poll
        for entry in list(self.schedule.values()):
            try:
                self._maybe_send(entry)
            except BrokerUnavailable as exc:
                self._set_role(roles.NO_BROKER, str(exc))
                return self.timing.poll
            wait = min(wait, next_check(entry.schedule, self.app.now().timestamp(), wait))
        return max(wait, 0.01)

    def _maybe_send(self, entry: Any) -> None:
        assert self.coordinator is not None
        now = self.app.now().timestamp()
        last = self.coordinator.last_slot(entry.name)
        if last is None and entry.name in self._remembered:
            # Evicted (a maxmemory policy other than noeviction) or deleted: say so, and go on
            # from the slot this process knows rather than count it as new and skip a tick.
            last = self._remembered[entry.name]
            logger.warning(
                "cron: the slot record of %s was lost from the broker (evicted or deleted); "
                "going on from slot %s",
                entry.name,
                last,
            )
        if last is not None:
            self._remembered[entry.name] = last
        slot = due_slot(entry.schedule, last, now)
        keep = record_ttl(entry.schedule)
        if slot is None or not self.coordinator.claim(entry.name, slot, keep):
            return
        self._remembered[entry.name] = slot
        if last is None:
            # A schedule never seen on this broker starts counting now, as beat does.
            logger.info("cron: %s first seen, next send after slot %s", entry.name, slot)
            return
        self._send(entry, slot, last)

    def _send(self, entry: Any, slot: float, last: float) -> None:
        options = dict(entry.options)
        headers = dict(options.get("headers") or {})
        headers.update(
            {
                "celery_beat_task": True,
                SLOT_HEADER: slot,
                AFTER_HEADER: last,
                SENDER_HEADER: self._sender,
            }
        )
        options["headers"] = headers
        # No publish retry: a retried publish whose first try reached the broker would send the
        # slot twice; a failed one loses this slot, and the next slot goes out as usual.
        options["retry"] = False
        logger.info("Scheduler: Sending due task %s (%s) for slot %s", entry.name, entry.task, slot)
        try:
            task = self.app.tasks.get(entry.task)
            if task is not None:
                task.apply_async(entry.args, entry.kwargs, producer=self._publisher(), **options)
            else:
                self.app.send_task(
                    entry.task, entry.args, entry.kwargs, producer=self._publisher(), **options
                )
        except Exception as exc:  # any publish failure; the slot is recorded, so it is lost
            logger.error("cron: sending %s for slot %s failed: %s", entry.name, slot, exc)
            self._drop_producer()
        else:
            self.reserve(entry)
            if self.state_dir is not None:
                roles.note_sent(self.state_dir, os.getpid(), slot)

    def _publisher(self) -> Any:
        """The producer for sends, on a publishing connection of this scheduler's own.

        Beat's ``producer`` and ``connection`` are cached properties whose cache beat itself
        clears through ``__dict__``; they are left alone, so a change in how beat caches them
        cannot keep a dead connection here. The connection opens on the first publish.
        """
        if self._publishing is None:
            connection = self.app.connection_for_write()
            self._publishing = (connection, self.Producer(connection, auto_declare=False))
        return self._publishing[1]

    def _drop_producer(self) -> None:
        publishing, self._publishing = self._publishing, None
        if publishing is not None:
            try:
                publishing[0].release()
            except Exception:  # a dead connection may fail to close; it is dropped anyway
                logger.debug("cron: closing the publishing connection failed", exc_info=True)

    def close(self) -> None:
        """Release the lease at once (a warm stop hands over), then close as beat does."""
        try:
            if self.coordinator is not None:
                self.coordinator.release()
                if self.role == roles.LEADER:
                    logger.warning("cron role: leader -> stopped (lease released)")
            if self.state_dir is not None:
                roles.remove_role(self.state_dir, os.getpid())
            self._drop_producer()
        finally:
            super().close()


def coordinate(app: Any, settings: Any) -> list[str]:
    """Configure ``app`` for coordinated cron; return the beat arguments that select it."""
    app.conf.console_cron_takeover = settings.cron_takeover
    if settings.cron_name:
        app.conf.console_cron_name = settings.cron_name
    app.conf.console_cron_state_dir = str(settings.state_dir)
    return ["-S", f"{CoordinatedScheduler.__module__}:{CoordinatedScheduler.__name__}"]
