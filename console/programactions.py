"""The operator's actions on the supervised programs: restart, stop, start, scale, rolling
restart, purge, reload. Each runs as a job (:func:`console.jobs.action`), one at a time.

Blocking: they run on the runtime's job thread, never on a screen's.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from console.actions import ActionResult
from console.appref import app_queue_names
from console.handover import WorkerHandover
from console.jobs import JobQueue, action
from console.programs import CRON, cron_program, worker_program
from console.reload import describe_change, restart_programs
from console.reload import log as reload_log
from console.serialised import holding
from console.settings import Settings, WorkerGroup
from console.supervision import ProcessState, RollingRestartError, Supervisor

if TYPE_CHECKING:
    from celery import Celery


class ProgramActions:
    """Actions on the programs and queues; mixed into the runtime, which owns the parts below."""

    settings: Settings
    app: Celery
    supervisor: Supervisor
    handover: WorkerHandover
    jobs: JobQueue
    last_reload: str | None
    _counts: dict[str, int]
    _groups: dict[str, WorkerGroup]
    _scale_lock: threading.Lock

    @action("restart {name}")
    def restart(self, name: str) -> ActionResult:
        """Restart one program; a running worker is replaced start-first, with no gap."""
        try:
            if self.handover.restart(name):
                return ActionResult.done(
                    f"{name} replaced: the new process answered before the old one stopped"
                )
        except RollingRestartError as exc:
            return ActionResult.failed(str(exc))
        self.supervisor.restart(name)
        return ActionResult.done(f"restarting {name}")

    @action("stop {name}")
    def stop(self, name: str) -> ActionResult:
        """Stop one program (warm shutdown)."""
        self.supervisor.stop(name)
        return ActionResult.done(f"stopping {name}")

    @action("start {name}")
    def start_program(self, name: str) -> ActionResult:
        """Start one program (also leaves FATAL)."""
        self.supervisor.start(name)
        return ActionResult.done(f"starting {name}")

    def toggle(self, name: str) -> ActionResult:
        """Stop a running program, or start a stopped one."""
        states = {p.name: p.state for p in self.supervisor.snapshot()}
        if states.get(name) in (ProcessState.RUNNING, ProcessState.STARTING, ProcessState.BACKOFF):
            return self.stop(name)
        return self.start_program(name)

    @action("toggle cron")
    def toggle_cron(self) -> ActionResult:
        """Run or stop the cron process."""
        names = {p.name for p in self.supervisor.snapshot()}
        if CRON not in names:
            self.supervisor.add_program(cron_program(self.settings))
            return ActionResult.done("cron added")
        return self.toggle(CRON)

    def group(self, name: str | None = None) -> WorkerGroup:
        """A worker group by name (the first one by default)."""
        if name is None:
            return self.settings.worker_groups[0]
        return self._groups[name]

    def group_size(self, name: str) -> int:
        """How many processes a worker group is meant to have now."""
        return self._counts[name]

    @action("scale {delta:+d}")
    @holding("_scale_lock")  # the count and the supervisor's change go together, in order
    def scale(self, delta: int, group_name: str | None = None) -> ActionResult:
        """Add (delta > 0) or remove (delta < 0) worker processes in a group."""
        group = self.group(group_name)
        count = self._counts[group.name] + delta
        if count < 0:
            return ActionResult.refused(f"{group.name}: already at 0 processes")
        if count > self.settings.max_processes:
            limit = self.settings.max_processes
            return ActionResult.refused(f"{group.name}: limit is {limit} processes")
        self._counts[group.name] = count
        self.supervisor.scale(group.name, count, lambda n: worker_program(self.settings, group, n))
        return ActionResult.done(f"{group.name}: scaling to {count}")

    @action("rolling restart {group_name}")
    def rolling_restart(self, group_name: str | None = None) -> ActionResult:
        """Replace a group's workers one at a time, each replacement answering a ping before
        the process it replaces stops (members not running are simply restarted)."""
        group = self.group(group_name)
        states = {s.name: s.state for s in self.supervisor.snapshot()}
        members = self.supervisor.group_members(group.name)
        try:
            for done, name in enumerate(members):
                self.jobs.progress(f"{done}/{len(members)} replaced, now {name}")
                if states.get(name) is not ProcessState.STOPPED and not self.handover.restart(name):
                    self.supervisor.restart(name)
        except RollingRestartError as exc:
            return ActionResult.failed(f"{group.name}: rolling restart stopped: {exc}")
        return ActionResult.done(f"{group.name}: rolling restart done")

    @action("purge {queue}")
    def purge(self, queue: str) -> ActionResult:
        """Delete every message waiting in one of the app's queues."""
        known = app_queue_names(self.app)
        if queue not in known:
            return ActionResult.refused(f"unknown queue {queue!r}")
        try:
            with self.app.connection_for_write() as conn:
                conn.ensure_connection(max_retries=1, timeout=5)
                removed = conn.default_channel.queue_purge(queue) or 0
        except Exception as exc:
            return ActionResult.failed(f"purge of {queue} failed: {type(exc).__name__}")
        return ActionResult.done(f"purged {removed} messages from {queue}")

    def reload_code(self, changed: Sequence[Path]) -> str:
        """Restart workers and cron after a source change (warm stop; rolling in big groups),
        as one job like any other action; the reloader waits for it."""
        result = self.jobs.run(
            f"reload ({describe_change(changed)})", lambda: self._reload(changed), who="reloader"
        )
        return result.message

    def _reload(self, changed: Sequence[Path]) -> ActionResult:
        note = f"reloaded: {describe_change(changed)}"
        self.last_reload = note
        reload_log.info("%s (%s)", note, ", ".join(map(str, changed)))
        problems = restart_programs(self.supervisor, self.rolling_restart)
        if problems:
            note = f"reload stopped: {problems[0]}"
            self.last_reload = note
            reload_log.warning("%s", note)
            return ActionResult.failed(note)
        return ActionResult.done(note)
