"""The Textual console: one screen of processes, queues, tasks, workers and logs."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

from textual import on
from textual.binding import Binding

from console.cluster.models import TaskInfo
from console.snapshot import DashboardData
from console.ui.commands import ConsoleCommands, PaletteCommand
from console.ui.dashboard import LOG_TAIL, DashboardScreen, palette_commands
from console.ui.failures import FailuresScreen
from console.ui.follow import safe_output
from console.ui.keymap import check_keymap, help_sections
from console.ui.livetable import LiveTable
from console.ui.modals import ConfirmScreen, TypeNameScreen
from console.ui.polling import ConsoleSource, DashboardUpdated
from console.ui.process_detail import ProcessDetailScreen
from console.ui.quitting import QuitFlowApp
from console.ui.remote import SEVERITY, WorkerControlApp
from console.ui.screens import HelpScreen, LogScreen, TaskDetailScreen
from console.ui.tables import ProcessTable, QueueTable, TaskTable
from console.ui.watchmode import action_name, needs_supervisor, watch_commands, watch_sections

# The polling and the ways out are in console/ui/polling.py and console/ui/quitting.py.
__all__ = ["LOG_TAIL", "SEVERITY", "ConsoleApp", "ConsoleSource", "DashboardUpdated"]


def terminal_has_few_colours() -> bool:
    """True on a terminal with 16 colours or fewer, where the ANSI palette reads best."""
    from rich.console import Console

    return Console().color_system in ("standard", "windows")


ACTIONS = frozenset(
    {"restart", "toggle_selected", "toggle_cron", "scale", "rolling_restart", "revoke"}
    | {"terminate", "purge", "pool", "pool_restart", "consume", "shutdown_worker"}
)
"""Actions that change something: refused and hidden for a read-only client."""


def changes(binding: Binding) -> bool:
    """True when a binding runs an action that changes something (hidden when read-only)."""
    return action_name(binding.action) in ACTIONS or binding.id in (
        "detail_revoke",
        "detail_terminate",
    )


class ConsoleApp(QuitFlowApp):
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
        self._on_screen: DashboardData | None = None
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

    def palette_commands(self) -> list[PaletteCommand]:
        """Every main-screen action as a command palette entry."""
        commands = palette_commands(help_sections(self.source.settings.keymap))
        return watch_commands(commands) if self.watch_mode else commands

    # actions -----------------------------------------------------------------------------

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
