"""The screen's data: its source polled off the UI thread, each result put on the screen.

One poll at a time on a worker thread, on a steady cadence (faster just after start-up); the
result comes back as a message and only its handler touches the widgets.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass
from typing import Protocol

from rich.text import Text
from textual import on, work
from textual.css.query import NoMatches
from textual.message import Message
from textual.widgets import Log, Static
from textual.worker import Worker, WorkerState

from console.actions import ActionResult
from console.cluster.models import TaskInfo
from console.settings import Settings
from console.snapshot import DashboardData
from console.ui.capacity import CapacityWarnings
from console.ui.dashboard import LOG_TAIL, DashboardScreen
from console.ui.follow import PollFailed, followed, safe_output
from console.ui.livetable import LiveTable
from console.ui.remote import WorkerControlApp, WorkerSource
from console.ui.screens import appended
from console.ui.statusbar import StatusBar
from console.ui.tables import ProcessTable, QueueTable, TaskTable
from console.ui.workers import WorkerTable

#: For this many seconds after start-up the screen polls every ``STARTUP_POLL`` seconds, so the
#: first frame listing the workers follows the cluster monitor's first ping round closely.
STARTUP_WINDOW = 3.0
STARTUP_POLL = 0.25


class ConsoleSource(WorkerSource, Protocol):
    """What the screen needs from the engine (a :class:`ConsoleRuntime`, or a fake in tests)."""

    settings: Settings

    def poll(self) -> DashboardData: ...
    def output(self, name: str, last: int | None = None, stamps: bool = False) -> list[str]: ...
    def restart(self, name: str) -> ActionResult: ...
    def toggle(self, name: str) -> ActionResult: ...
    def toggle_cron(self) -> ActionResult: ...
    def scale(self, delta: int, group_name: str | None = None) -> ActionResult: ...
    def rolling_restart(self, group_name: str | None = None) -> ActionResult: ...
    def task(self, uuid: str) -> TaskInfo | None: ...
    def revoke(self, uuid: str, terminate: bool = False) -> ActionResult: ...
    def purge(self, queue: str) -> ActionResult: ...
    def shutdown(self) -> None: ...
    def shutdown_now(self) -> None: ...


@dataclass
class DashboardUpdated(Message):
    """A fresh poll result, with the log tail of the selected process."""

    data: DashboardData
    log_name: str | None
    log_lines: list[str]


class DashboardPollingApp(WorkerControlApp):
    """The console app's polling: its source's snapshots, and the selected process's output."""

    source: ConsoleSource
    live: bool
    stamps: bool
    _selected: str | None
    _stop: threading.Event
    _log_lines: list[str]
    _log_name: str | None
    _poll_error: str | None
    _on_screen: DashboardData | None

    @property
    def dashboard(self) -> DashboardScreen:
        """The main screen, whatever screen is on top of it."""
        screen = self.screen_stack[0]
        assert isinstance(screen, DashboardScreen)
        return screen

    @work(thread=True, exclusive=True, group="poll", exit_on_error=False)
    def poll_loop(self) -> None:
        """Poll the engine on a steady cadence, one poll at a time, off the UI thread."""
        interval = self.source.settings.refresh_interval
        began = time.monotonic()
        order: list[str] = []
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                data = self.source.poll()
            except Exception as exc:
                if getattr(exc, "ends_session", False):
                    raise
                self.post_message(PollFailed(f"{type(exc).__name__}: {exc}"))
            else:
                names = [p.name for p in data.processes]
                name = followed(self._selected, order, names)
                order = names
                lines = safe_output(self._read_output, name, LOG_TAIL) if name else []
                self.post_message(DashboardUpdated(data, name, lines))
            if not self.live:
                return
            wait = interval if started - began >= STARTUP_WINDOW else min(interval, STARTUP_POLL)
            self._nap(max(wait - (time.monotonic() - started), 0.05))

    def _nap(self, seconds: float) -> None:
        """Wait for the next poll, or less when the engine asks for one (a broker alarm changed)."""
        wakeup: threading.Event | None = getattr(self.source, "wakeup", None)
        if wakeup is None:
            self._stop.wait(seconds)
            return
        wakeup.wait(seconds)
        wakeup.clear()

    def _stop_polling(self) -> None:
        self._stop.set()
        wakeup: threading.Event | None = getattr(self.source, "wakeup", None)
        if wakeup is not None:
            wakeup.set()

    def _read_output(self, name: str, last: int | None) -> list[str]:
        return self.source.output(name, last, stamps=self.stamps)

    def action_timestamps(self) -> None:
        """Each output line with the time it arrived, or not (the log pane is redrawn)."""
        self.stamps = not self.stamps
        name = self._log_name
        if name is not None:
            self._log_name = None  # the next lines do not follow the old ones: redraw
            self._show_log(name, safe_output(self._read_output, name, LOG_TAIL))
        self.notify(f"timestamps {'on' if self.stamps else 'off'}", timeout=2)

    @on(PollFailed)
    def poll_failed(self, message: PollFailed) -> None:
        """Say once that polls fail (the next success clears it); the refresh goes on."""
        if message.error != self._poll_error:
            self._poll_error = message.error
            self.notify(f"refresh failed: {message.error}", severity="error", timeout=8)

    @on(DashboardUpdated)
    def show_data(self, message: DashboardUpdated) -> None:
        """Put a poll result on the screen."""
        self._poll_error = None
        data = message.data
        self.last_data = data
        # A refresh can arrive while the app takes its widgets down at exit: drop it.
        with contextlib.suppress(NoMatches):
            self._show_data(data, message)

    def _show_data(self, data: DashboardData, message: DashboardUpdated) -> None:
        # A pane whose data is the very object it showed last is left alone (a server sends
        # only what changed; the client keeps the rest as it was).
        before, self._on_screen = self._on_screen, data

        def changed(*names: str) -> bool:
            return before is None or any(getattr(data, n) is not getattr(before, n) for n in names)

        if not self.watch_mode:
            self.dashboard.query_one(ProcessTable).show(data.processes)
        if changed("queues", "capacity"):
            self.dashboard.query_one(QueueTable).show(data.queues, data.capacity)
            self.dashboard.query_one(CapacityWarnings).show(data.capacity)
        if data.active_tasks or changed("active_tasks"):  # running times count from taken_at
            self.dashboard.query_one(TaskTable).show(data.active_tasks, data.taken_at)
        if changed("workers", "remote_workers"):
            self.dashboard.query_one(WorkerTable).show(data.workers, data.remote_workers)
        if not self._stop.is_set():
            bar = self.dashboard.query_one(StatusBar)
            source = self.source.settings.broker_source
            bar.show(data, source, self.attachment, self.watch_mode)
        if not self.watch_mode:
            self._show_log(message.log_name, message.log_lines)

    def _show_log(self, name: str | None, lines: list[str]) -> None:
        log = self.dashboard.query_one("#log", Log)
        more = appended(self._log_lines, lines) if name == self._log_name else None
        if name != self._log_name:
            title = Text(f"output of {name or '-'} (l: full screen)")
            if self.attachment:
                attached = f"   {self.attachment} (d: detach)"
                if title.cell_len + len(attached) > self.size.width - 2:  # never cut: say less
                    attached = "   attached (d: detach)"
                title.append(attached, "cyan")
            self.dashboard.query_one("#logtitle", Static).update(title)
        self._log_name, self._log_lines = name, lines
        if more is None:
            log.clear()
            log.write_lines(lines)
        elif more:
            log.write_lines(more)

    @on(LiveTable.RowHighlighted, "#processes")
    def select_process(self, event: LiveTable.RowHighlighted) -> None:
        """The log pane follows the highlighted process."""
        self._selected = event.key
        if self._selected and self._selected != self._log_name:
            lines = safe_output(self._read_output, self._selected, LOG_TAIL)
            self._show_log(self._selected, lines)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Failures of background work become a visible message instead of a crash."""
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            error = event.worker.error
            if getattr(error, "ends_session", False) and not self._stop.is_set():
                self._stop.set()  # the server went away: nothing left to show
                self.exit(return_code=1, message=f"sentry-console: {error}")
                return
            self.notify(f"{type(error).__name__}: {error}", severity="error", timeout=8)
            if event.worker.group == "poll" and not self._stop.is_set():
                self.set_timer(2.0, self.poll_loop)

    @property
    def attachment(self) -> str | None:
        """'attached · server pid …' when the source is a supervisor server, else None."""
        return getattr(self.source, "attachment", None)
