"""The Textual console: one screen of processes, queues, tasks, workers and logs."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import DataTable, Footer, Log, Static
from textual.worker import Worker, WorkerState

from console.runtime import DashboardData
from console.settings import Settings
from console.ui.tables import ProcessTable, QueueTable, TaskTable, WorkerTable, broker_line

LOG_TAIL = 500


class ConsoleSource(Protocol):
    """What the screen needs from the engine (a :class:`ConsoleRuntime`, or a fake in tests)."""

    settings: Settings

    def poll(self) -> DashboardData: ...
    def output(self, name: str, last: int | None = None) -> list[str]: ...
    def restart(self, name: str) -> str: ...
    def toggle(self, name: str) -> str: ...
    def toggle_cron(self) -> str: ...
    def scale(self, delta: int, group_name: str | None = None) -> str: ...
    def rolling_restart(self, group_name: str | None = None) -> str: ...
    def shutdown(self) -> None: ...


@dataclass
class DashboardUpdated(Message):
    """A fresh poll result, with the log tail of the selected process."""

    data: DashboardData
    log_name: str | None
    log_lines: list[str]


class ConsoleApp(App[None]):
    """Supervise and watch a Celery cluster from one terminal screen."""

    CSS_PATH = Path(__file__).with_name("console.tcss")
    TITLE = "sentry-console"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS = [
        Binding("r", "restart", "Restart", id="restart", tooltip="Restart the selected process"),
        Binding("R", "rolling_restart", "Rolling", id="rolling", tooltip="Rolling restart"),
        Binding("plus,+", "scale(1)", "+Worker", id="scale_up", key_display="+"),
        Binding("minus,-", "scale(-1)", "-Worker", id="scale_down", key_display="-"),
        Binding(
            "s", "toggle_selected", "Stop/Start", id="toggle", tooltip="Stop or start the selected"
        ),
        Binding("c", "toggle_cron", "Cron", id="cron", tooltip="Cron on / off"),
        Binding("q", "quit_console", "Quit", id="quit", tooltip="Stop every process and quit"),
    ]

    def __init__(self, source: ConsoleSource, *, live: bool = True) -> None:
        super().__init__()
        self.source = source
        self.live = live
        self._selected: str | None = None
        self._stop = threading.Event()
        self._log_key: tuple[str | None, int, str] = (None, 0, "")
        self.last_data: DashboardData | None = None

    def compose(self) -> ComposeResult:
        """Status bar, four tables, the log pane and the footer."""
        yield Static(Text("starting…"), id="status")
        with Horizontal(id="top"):
            yield ProcessTable(id="processes")
            yield QueueTable(id="queues")
        with Horizontal(id="middle"):
            yield TaskTable(id="tasks")
            yield WorkerTable(id="workers")
        with Vertical(id="logbox"):
            yield Static("output", id="logtitle")
            yield Log(id="log", max_lines=LOG_TAIL, auto_scroll=True)
        yield Footer()

    def on_mount(self) -> None:
        """Set titles, trap termination signals and start polling."""
        for widget_id, title in (
            ("processes", "processes"),
            ("queues", "queues"),
            ("tasks", "active tasks"),
            ("workers", "workers"),
        ):
            self.query_one(f"#{widget_id}").border_title = title
        self.query_one("#processes").focus()
        if self.live:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGHUP):
                loop.add_signal_handler(sig, self.action_quit_console)
        self.poll_loop()

    # polling -----------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="poll", exit_on_error=False)
    def poll_loop(self) -> None:
        """Poll the engine on a steady cadence, one poll at a time, off the UI thread."""
        interval = self.source.settings.refresh_interval
        while not self._stop.is_set():
            started = time.monotonic()
            data = self.source.poll()
            name = self._selected
            if name is None and data.processes:
                name = data.processes[0].name
            lines = self.source.output(name, LOG_TAIL) if name else []
            self.post_message(DashboardUpdated(data, name, lines))
            if not self.live:
                return
            self._stop.wait(max(interval - (time.monotonic() - started), 0.05))

    @on(DashboardUpdated)
    def show_data(self, message: DashboardUpdated) -> None:
        """Put a poll result on the screen."""
        data = message.data
        self.last_data = data
        self.query_one(ProcessTable).show(data.processes)
        self.query_one(QueueTable).show(data.queues)
        self.query_one(TaskTable).show(data.active_tasks, data.taken_at)
        self.query_one(WorkerTable).show(data.workers, data.remote_workers)
        self.query_one("#status", Static).update(self._status_text(data))
        self._show_log(message.log_name, message.log_lines)

    def _status_text(self, data: DashboardData) -> Text:
        text = broker_line(data.broker_url, data.broker)
        online = sum(1 for w in data.workers if w.online)
        queued = sum(q.ready or 0 for q in data.queues)
        text.append(f"  workers {online}/{len(data.workers)}", "bold")
        text.append(f"  active {len(data.active_tasks)}", "bold")
        text.append(f"  queued {queued}", "bold")
        return text

    def _show_log(self, name: str | None, lines: list[str]) -> None:
        key = (name, len(lines), lines[-1] if lines else "")
        if key == self._log_key:
            return
        self._log_key = key
        self.query_one("#logtitle", Static).update(f"output of {name or '-'}")
        log = self.query_one(Log)
        log.clear()
        log.write_lines(lines)

    @on(DataTable.RowHighlighted, "#processes")
    def select_process(self, event: DataTable.RowHighlighted) -> None:
        """The log pane follows the highlighted process."""
        self._selected = None if event.row_key.value is None else str(event.row_key.value)
        if self._selected and self._selected != self._log_key[0]:
            self._show_log(self._selected, self.source.output(self._selected, LOG_TAIL))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Failures of background work become a visible message instead of a crash."""
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            error = event.worker.error
            self.notify(f"{type(error).__name__}: {error}", severity="error", timeout=8)
            if event.worker.group == "poll" and not self._stop.is_set():
                self.set_timer(2.0, self.poll_loop)

    # actions -----------------------------------------------------------------------------
    def _selected_process(self) -> str | None:
        return self.query_one(ProcessTable).selected_key()

    @work(thread=True, group="action", exit_on_error=False)
    def _run_action(self, action: Callable[[], str]) -> None:
        message = action()
        self.call_from_thread(self.notify, message, timeout=3)

    def action_restart(self) -> None:
        """Restart the selected process."""
        name = self._selected_process()
        if name:
            self._run_action(lambda: self.source.restart(name))

    def action_toggle_selected(self) -> None:
        """Stop the selected process, or start it when stopped."""
        name = self._selected_process()
        if name:
            self._run_action(lambda: self.source.toggle(name))

    def action_toggle_cron(self) -> None:
        """Turn the cron process on or off."""
        self._run_action(self.source.toggle_cron)

    def action_scale(self, delta: int) -> None:
        """Add or remove a worker process."""
        self._run_action(lambda: self.source.scale(delta))

    def action_rolling_restart(self) -> None:
        """Restart the workers one at a time."""
        self.notify("rolling restart started", timeout=3)
        self._run_action(self.source.rolling_restart)

    def action_quit_console(self) -> None:
        """Stop every child gracefully, then leave."""
        if self._stop.is_set():
            return
        self._stop.set()
        for status in self.query("#status").results(Static):
            status.update(Text("stopping every process…", "bold yellow"))
        self._shutdown_then_exit()

    @work(thread=True, group="shutdown", exit_on_error=False)
    def _shutdown_then_exit(self) -> None:
        try:
            self.source.shutdown()
        finally:
            self.call_from_thread(self.exit)
