"""Remote control of the selected worker, and folding hosts: the workers pane's actions.

Every command goes to the worker through the broker and the notification carries the worker's
own reply (or its refusal, or the silence), with the severity of the outcome. The calls block
on the broker, so they run on a thread, never on the UI's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from textual import work
from textual.app import App

from console.actions import ActionResult, Outcome
from console.cluster.models import WorkerInfo
from console.snapshot import DashboardData
from console.ui.modals import ConfirmScreen, QueueScreen
from console.ui.workers import WorkerTable

SEVERITY = {Outcome.DONE: "information", Outcome.REFUSED: "warning", Outcome.FAILED: "error"}


class WorkerSource(Protocol):
    """What remote control needs from the engine (local or remote workers alike)."""

    def pool(self, hostname: str, delta: int) -> ActionResult: ...
    def pool_restart(self, hostname: str) -> ActionResult: ...
    def consume(self, hostname: str, queue: str, on: bool = True) -> ActionResult: ...
    def shutdown_worker(self, hostname: str) -> ActionResult: ...


class WorkerControlApp(App[None]):
    """The console app's remote-control actions on the workers pane's selected worker."""

    source: WorkerSource
    last_data: DashboardData | None
    watch_mode: bool

    @work(thread=True, group="action", exit_on_error=False)
    def _run_action(self, action: Callable[[], ActionResult]) -> None:
        result = action()
        severity = SEVERITY[result.outcome]
        self.call_from_thread(self.notify, result.message, severity=severity, timeout=6)

    @property
    def worker_table(self) -> WorkerTable:
        """The workers pane (on the main screen, whatever screen is on top of it)."""
        return self.screen_stack[0].query_one(WorkerTable)

    def _selected_worker(self) -> str | None:
        table = self.worker_table
        hostname = table.selected_worker()
        if hostname is None:
            on_host = table.selected_key() is not None
            why = "the cursor is on a host: enter opens it" if on_host else "none listed"
            self.notify(f"no worker selected ({why})", severity="warning")
        return hostname

    def _worker_info(self, hostname: str) -> WorkerInfo | None:
        data = self.last_data
        return next((w for w in data.workers if w.hostname == hostname), None) if data else None

    def action_pool(self, delta: int) -> None:
        """Grow or shrink the pool of the selected worker (local or remote)."""
        hostname = self._selected_worker()
        if hostname:
            self._run_action(lambda: self.source.pool(hostname, delta))

    def action_pool_restart(self) -> None:
        """Replace the selected worker's pool processes (the worker must allow it)."""
        hostname = self._selected_worker()
        if hostname:
            self._run_action(lambda: self.source.pool_restart(hostname))

    def known_queues(self) -> list[str]:
        """Every queue the screen knows of: the broker's list and what workers consume."""
        data = self.last_data
        if data is None:
            return []
        names = [q.name for q in data.queues]
        consumed = {q for w in data.workers for q in w.queues}
        return names + sorted(consumed - set(names))

    def action_consume(self, on: bool) -> None:
        """Ask which queue, then make the selected worker start (``on``) or stop consuming it."""
        hostname = self._selected_worker()
        if not hostname:
            return
        worker = self._worker_info(hostname)
        consumed = list(worker.queues) if worker else []
        choices = [q for q in self.known_queues() if q not in consumed] if on else consumed
        verb = "start" if on else "stop"
        now = ", ".join(consumed) if consumed else "none known yet"
        hint = f"It consumes: {now}. Names complete with the right arrow; escape cancels."

        def chosen(queue: str | None) -> None:
            if queue:
                self._run_action(lambda: self.source.consume(hostname, queue, on))

        question = f"Make {hostname} {verb} consuming which queue?"
        self.push_screen(QueueScreen(question, choices, hint), chosen)

    def action_shutdown_worker(self) -> None:
        """Warm shutdown of the selected worker, after a confirmation (remote workers only
        outside watch mode: this console's own are stopped with ``s``)."""
        hostname = self._selected_worker()
        if not hostname:
            return
        data = self.last_data
        if not self.watch_mode and data is not None and hostname not in data.remote_workers:
            self.notify(f"{hostname} runs under this console: s stops it", severity="warning")
            return
        worker = self._worker_info(hostname)
        active = worker.active if worker else 0
        plural = "s" if active != 1 else ""
        tasks = f"its {active} running task{plural}" if active else "any task it is running"
        question = (
            f"Warm shutdown of {hostname}? It finishes {tasks}, then exits; "
            "whatever started it decides whether it comes back."
        )

        def answered(yes: bool | None) -> None:
            if yes:
                self._run_action(lambda: self.source.shutdown_worker(hostname))

        self.push_screen(ConfirmScreen(question, "Shut down"), answered)

    def action_toggle_host(self) -> None:
        """Fold or open the selected host in the workers pane."""
        self.worker_table.toggle_host()

    def action_toggle_hosts(self) -> None:
        """Fold every host, or open them all."""
        self.worker_table.toggle_all()
