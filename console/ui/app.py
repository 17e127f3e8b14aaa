"""The Textual console: one screen of processes, queues, tasks, workers and logs."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from rich.text import Text
from textual import on, work
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.message import Message
from textual.widgets import Log, Static
from textual.worker import Worker, WorkerState

from console.actions import ActionResult
from console.cluster.models import TaskInfo
from console.settings import Settings
from console.snapshot import DashboardData
from console.ui.capacity import CapacityWarnings
from console.ui.commands import ConsoleCommands, PaletteCommand
from console.ui.dashboard import LOG_TAIL, DashboardScreen, palette_commands
from console.ui.failures import FailuresScreen
from console.ui.follow import PollFailed, followed, safe_output
from console.ui.keymap import check_keymap, help_sections
from console.ui.livetable import LiveTable
from console.ui.modals import ConfirmScreen, QuitScreen, TypeNameScreen, running_tasks
from console.ui.process_detail import ProcessDetailScreen
from console.ui.remote import SEVERITY, WorkerControlApp, WorkerSource
from console.ui.screens import HelpScreen, LogScreen, TaskDetailScreen, appended
from console.ui.statusbar import StatusBar
from console.ui.tables import ProcessTable, QueueTable, TaskTable
from console.ui.watchmode import action_name, needs_supervisor, watch_commands, watch_sections
from console.ui.workers import WorkerTable

__all__ = ["LOG_TAIL", "SEVERITY", "ConsoleApp", "ConsoleSource", "DashboardUpdated"]

#: For this many seconds after start-up the screen polls every ``STARTUP_POLL`` seconds, so the
#: first frame listing the workers follows the cluster monitor's first ping round closely.
STARTUP_WINDOW = 3.0
STARTUP_POLL = 0.25


def terminal_has_few_colours() -> bool:
    """True on a terminal with 16 colours or fewer, where the ANSI palette reads best."""
    from rich.console import Console

    return Console().color_system in ("standard", "windows")


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


ACTIONS = frozenset(
    {"restart", "toggle_selected", "toggle_cron", "scale", "rolling_restart", "revoke"}
    | {"terminate", "purge", "pool", "pool_restart", "consume", "shutdown_worker"}
)
"""Actions that change something: refused and hidden for a read-only client."""


@dataclass
class DashboardUpdated(Message):
    """A fresh poll result, with the log tail of the selected process."""

    data: DashboardData
    log_name: str | None
    log_lines: list[str]


def changes(binding: Binding) -> bool:
    """True when a binding runs an action that changes something (hidden when read-only)."""
    return action_name(binding.action) in ACTIONS or binding.id in (
        "detail_revoke",
        "detail_terminate",
    )


class ConsoleApp(WorkerControlApp):
    """Supervise and watch a Celery cluster from one terminal screen."""

    CSS_PATH = Path(__file__).with_name("console.tcss")
    TITLE = "sentry-console"
    ENABLE_COMMAND_PALETTE = True
    COMMANDS = WorkerControlApp.COMMANDS | {ConsoleCommands}
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]

    def __init__(self, source: ConsoleSource, *, live: bool = True, ansi: bool = False) -> None:
        super().__init__(ansi_color=ansi or None)
        if ansi:
            self.theme = "ansi-dark"
        self.source: ConsoleSource = source
        self.watch_mode = bool(source.settings.watch)
        """Watch mode: nothing supervised; the keys that need a supervisor are absent."""
        self.set_keymap(check_keymap(dict(source.settings.keymap)))
        self.live = live
        self._selected: str | None = None
        self._stop = threading.Event()
        self._log_lines: list[str] = []
        self._log_name: str | None = None
        self._poll_error: str | None = None
        self.stamps = False
        self.last_data: DashboardData | None = None
        self.detached = False
        self._warm_stop = False
        self.read_only = bool(getattr(source, "read_only", False))
        self.loop: asyncio.AbstractEventLoop | None = None

    def on_mount(self) -> None:
        """Trap termination signals and start polling."""
        # Termination signals are handled by the launcher (console/ui/launch.py), which must work
        # even when the terminal is gone and this loop is stuck writing to it.
        self.loop = asyncio.get_running_loop()
        self.poll_loop()

    def on_unmount(self) -> None:
        """However the app ends, the poll thread stops with it."""
        self._stop_polling()

    def get_default_screen(self) -> DashboardScreen:
        """The main screen."""
        return DashboardScreen(watch=self.watch_mode)

    @property
    def dashboard(self) -> DashboardScreen:
        """The main screen, whatever screen is on top of it."""
        screen = self.screen_stack[0]
        assert isinstance(screen, DashboardScreen)
        return screen

    def palette_commands(self) -> list[PaletteCommand]:
        """Every main-screen action as a command palette entry."""
        commands = palette_commands(help_sections(self.source.settings.keymap))
        return watch_commands(commands) if self.watch_mode else commands

    # polling -----------------------------------------------------------------------------
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
        if not self.watch_mode:
            self.dashboard.query_one(ProcessTable).show(data.processes)
        self.dashboard.query_one(QueueTable).show(data.queues, data.capacity)
        self.dashboard.query_one(CapacityWarnings).show(data.capacity)
        self.dashboard.query_one(TaskTable).show(data.active_tasks, data.taken_at)
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

    # actions -----------------------------------------------------------------------------
    @property
    def attachment(self) -> str | None:
        """'attached · server pid …' when the source is a supervisor server, else None."""
        return getattr(self.source, "attachment", None)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Hide what does not apply: actions for a read-only client, detach in-process, and in
        watch mode everything that needs a supervisor."""
        if self.read_only and action in ACTIONS:
            return False
        if self.watch_mode and needs_supervisor(action):
            return False
        if action == "detach":
            return self.attachment is not None
        return True

    def action_detach(self) -> None:
        """Leave every program running under the server and close this screen."""
        if self.attachment is None or self._stop.is_set():
            return
        self._stop.set()
        self.detached = True
        self.exit()

    def _selected_process(self) -> str | None:
        return self.dashboard.query_one(ProcessTable).selected_key()

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

    def _selected_group(self) -> str:
        """The selected process's worker group; the first group for cron or no selection."""
        groups = [g.name for g in self.source.settings.worker_groups]
        name, data = self._selected_process(), self.last_data
        group = next((p.group for p in data.processes if p.name == name), None) if data else None
        return group if group in groups else groups[0]

    def action_scale(self, delta: int) -> None:
        """Add or remove a process in the selected process's group (refused outside 0..limit)."""
        settings = self.source.settings
        group = self._selected_group()
        if self.last_data is not None:
            count = sum(1 for p in self.last_data.processes if p.group == group)
            if count + delta < 0:
                self.notify(f"{group}: already at 0 processes", severity="warning")
                return
            if count + delta > settings.max_processes:
                limit = settings.max_processes
                self.notify(f"{group}: limit is {limit} processes", severity="warning")
                return
        self._run_action(lambda: self.source.scale(delta, group))

    def action_rolling_restart(self) -> None:
        """Restart the workers one at a time."""
        self.notify("rolling restart started", timeout=3)
        self._run_action(self.source.rolling_restart)

    def action_logs(self) -> None:
        """Show the selected process's whole output on its own screen."""
        name = self._selected_process() or self._log_name
        if not name:
            self.notify("no process selected", severity="warning")
            return
        lines = self.source.settings.log_lines
        screen = LogScreen(
            name,
            lambda: safe_output(self._read_output, name, lines),
            self.source.settings.refresh_interval,
            live=self.live,
        )
        self.push_screen(screen)

    def action_help(self) -> None:
        """List every key."""
        sections = help_sections(self.source.settings.keymap)
        if self.read_only:
            sections = [(where, [b for b in keys if not changes(b)]) for where, keys in sections]
        if self.attachment is None:
            sections = [(w, [b for b in keys if b.id != "detach"]) for w, keys in sections]
        if self.watch_mode:
            sections = watch_sections(sections)
        self.push_screen(HelpScreen(sections))

    @on(LiveTable.RowSelected, "#processes")
    def action_process_detail(self) -> None:
        """Show the selected process's state and last exits (enter, or a click on its row)."""
        name, data = self._selected_process(), self.last_data
        process = next((p for p in data.processes if p.name == name), None) if data else None
        if process is not None:
            self.push_screen(ProcessDetailScreen(process, data.taken_at if data else None))

    @on(LiveTable.RowSelected, "#tasks")
    def task_selected(self) -> None:
        """Enter on a task opens its detail."""
        self.action_task_detail()

    def action_task_detail(self) -> None:
        """Show the selected task's arguments, timestamps and result or traceback."""
        uuid = self.dashboard.query_one(TaskTable).selected_key()
        if not uuid:
            self.notify("no task selected", severity="warning")
            return
        self.open_task(uuid)

    def open_task(self, uuid: str) -> None:
        """The detail of one task, as the engine has it (else as the last poll showed it)."""
        task = self.source.task(uuid)
        if task is None and self.last_data is not None:
            shown = (*self.last_data.active_tasks, *self.last_data.failures)
            task = next((t for t in shown if t.uuid == uuid), None)
        if task is None:
            self.notify(f"task {uuid[:8]} is no longer known", severity="warning")
            return
        now = self.last_data.taken_at if self.last_data else None
        self.push_screen(TaskDetailScreen(task, self.confirm_revoke, now))

    def action_failures(self) -> None:
        """The last failed tasks, filterable; enter on one shows its detail."""

        def latest() -> tuple[tuple[TaskInfo, ...], float]:
            data = self.last_data
            return (data.failures, data.taken_at) if data else ((), time.time())

        interval = self.source.settings.refresh_interval
        self.push_screen(FailuresScreen(latest, self.open_task, interval))

    def confirm_revoke(self, uuid: str, terminate: bool) -> None:
        """Ask, then revoke a task (``terminate`` also kills it where it runs)."""
        if self.read_only:
            self.notify("read-only: actions are disabled", severity="warning")
            return
        verb = "Terminate (revoke and kill)" if terminate else "Revoke"

        def answered(yes: bool | None) -> None:
            if yes:
                self._run_action(lambda: self.source.revoke(uuid, terminate))

        question = f"{verb} task {uuid}?"
        self.push_screen(ConfirmScreen(question, verb.split()[0]), answered)

    def _selected_task(self) -> str | None:
        uuid = self.dashboard.query_one(TaskTable).selected_key()
        if not uuid:
            self.notify("no task selected", severity="warning")
        return uuid

    def action_revoke(self) -> None:
        """Revoke the selected task, after a confirmation."""
        uuid = self._selected_task()
        if uuid:
            self.confirm_revoke(uuid, False)

    def action_terminate(self) -> None:
        """Revoke and kill the selected task, after a confirmation."""
        uuid = self._selected_task()
        if uuid:
            self.confirm_revoke(uuid, True)

    def action_purge(self) -> None:
        """Empty the selected queue, confirmed by typing its name."""
        queue = self.dashboard.query_one(QueueTable).selected_key()
        if not queue:
            self.notify("no queue selected", severity="warning")
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self._run_action(lambda: self.source.purge(queue))

        question = f"Purge every message waiting in {queue}?"
        self.push_screen(TypeNameScreen(question, queue), answered)

    async def action_quit(self) -> None:
        """ctrl+q and the palette's Quit: the same graceful way out as ``q``."""
        self.action_quit_console()

    def action_help_quit(self) -> None:
        """ctrl+c detaches (the programs go on, as after SIGINT); with no server it quits."""
        if self.attachment is not None:
            self.action_detach()
        else:
            self.action_quit_console()

    def action_quit_console(self) -> None:
        """Stop every child gracefully, then leave (asking first when tasks are running).

        During a warm stop, ``q`` asks again: "now" gives the programs their hard stop."""
        if isinstance(self.screen, QuitScreen):
            return
        if self._stop.is_set():
            if self._warm_stop:
                self.push_screen(QuitScreen(running_tasks(self.last_data)), self._escalate)
            return
        if self.watch_mode:  # nothing supervised: nothing to stop, nothing to ask
            self.stop_everything()
            return
        running = running_tasks(self.last_data)
        if running == 0:
            self.stop_everything()
            return

        def answered(choice: str | None) -> None:
            if choice is not None:
                self.stop_everything(wait=choice == "wait")

        self.push_screen(QuitScreen(running), answered)

    def leave(self) -> None:
        """Stop polling and exit at once (the terminal is gone: detach, the programs go on)."""
        self._stop_polling()
        self.detached = self.attachment is not None
        self.exit()

    def stop_everything(self, wait: bool = True) -> None:
        """Stop polling, stop every child (warm when ``wait``), then exit."""
        if self._stop.is_set():
            return
        self._stop_polling()
        self._warm_stop = wait and not self.watch_mode
        message = "stopping every process, tasks finishing…" if wait else "stopping now…"
        if self._warm_stop:
            message += " (q: stop now)"
        if self.watch_mode:
            message = "leaving (the workers are not touched)…"
        self.dashboard.query_one(StatusBar).say(Text(message, "bold yellow"))
        self._shutdown_then_exit(wait)

    def _escalate(self, choice: str | None) -> None:
        """Turn the warm stop under way into a hard one ("now" asked during it)."""
        if choice != "now" or not self._warm_stop:
            return
        self._warm_stop = False
        self.dashboard.query_one(StatusBar).say(Text("stopping now…", "bold red"))
        threading.Thread(target=self.source.shutdown_now, name="stop-now", daemon=True).start()

    @work(thread=True, group="shutdown", exit_on_error=False)
    def _shutdown_then_exit(self, wait: bool) -> None:
        try:
            if wait:
                self.source.shutdown()
            else:
                self.source.shutdown_now()
        finally:
            self.call_from_thread(self.exit)
