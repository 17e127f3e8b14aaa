"""The main screen: status bar, the four tables, the log pane, the filter box; and its keys.

In watch mode (nothing supervised) there are no processes and no output: the workers take the
top of the screen, active tasks and queues the bottom.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Input, Log, Static

from console.ui.capacity import CapacityWarnings
from console.ui.commands import PaletteCommand
from console.ui.failures import FailuresScreen
from console.ui.livetable import LiveTable
from console.ui.modals import ConfirmScreen, QueueScreen, QuitScreen, TypeNameScreen
from console.ui.process_detail import ProcessDetailScreen
from console.ui.screens import LogScreen, TaskDetailScreen
from console.ui.statusbar import StatusBar
from console.ui.tables import ProcessTable, QueueTable, SyncTable, TaskTable
from console.ui.workers import WorkerTable

LOG_TAIL = 500
SHORT_FOOTER_BELOW = 100
#: Keys the footer leaves out below SHORT_FOOTER_BELOW columns (``?`` and the palette have them).
OPTIONAL_KEYS = frozenset({"app.rolling_restart", "app.logs", "filter"})
#: Remote-control keys the footer shows only in watch mode (elsewhere ``?`` and the palette do).
REMOTE_KEYS = frozenset(
    {"app.pool_restart", "app.consume(True)", "app.consume(False)", "app.shutdown_worker"}
)
SCALE = Binding.Group("scale")
TITLES = {"processes": "processes", "queues": "queues", "tasks": "active tasks"}
"""Pane titles by table id (the workers pane titles itself: hosts, filter)."""


class FilterInput(Input):
    """The ``/`` filter box of the focused table; escape clears it."""

    BINDINGS: ClassVar = [
        Binding("escape", "screen.close_filter(True)", "clear", id="filter_clear", tooltip="Clear"),
    ]


class ConsoleFooter(Footer):
    """The footer; with the ``-short`` class it leaves out the keys in :data:`OPTIONAL_KEYS`,
    with ``-supervising`` those in :data:`REMOTE_KEYS`."""

    DEFAULT_CSS = """
    ConsoleFooter.-short FooterKey.-optional { display: none; }
    ConsoleFooter.-supervising FooterKey.-remote { display: none; }
    """

    def compose(self) -> ComposeResult:
        """Footer's keys, the optional and the remote-control ones marked."""
        for widget in super().compose():
            action = getattr(widget, "action", None)
            if action in OPTIONAL_KEYS:
                widget.add_class("-optional")
            if action in REMOTE_KEYS:
                widget.add_class("-remote")
            yield widget


class DashboardScreen(Screen[None]):
    """Processes, queues, active tasks, workers and the selected process's output at a glance."""

    BINDINGS: ClassVar = [
        Binding("R", "app.rolling_restart", "rolling", id="rolling", tooltip="Rolling restart"),
        Binding(
            "plus,+",
            "app.scale(1)",
            "add",
            group=SCALE,
            id="scale_up",
            key_display="+",
            tooltip="Add a worker process",
        ),
        Binding(
            "minus,-",
            "app.scale(-1)",
            "remove",
            group=SCALE,
            id="scale_down",
            key_display="-",
            tooltip="Remove a worker process",
        ),
        Binding("c", "app.toggle_cron", "cron", id="cron", tooltip="Cron on / off", show=False),
        Binding("l", "app.logs", "logs", id="logs", tooltip="Full-screen output of the process"),
        Binding("slash", "filter", "filter", id="filter", key_display="/", tooltip="Filter rows"),
        Binding("o", "sort", "sort", id="sort", tooltip="Sort by the next column", show=False),
        Binding("O", "sort_reverse", "reverse", id="sort_reverse", tooltip="Reverse", show=False),
        Binding(
            "t",
            "app.timestamps",
            "time",
            id="timestamps",
            tooltip="Output lines with the time they arrived (again: without)",
            show=False,
        ),
        Binding(
            "F",
            "app.failures",
            "failures",
            id="failures",
            tooltip="Recent failed tasks",
            show=False,
        ),
        Binding(
            "z",
            "zoom",
            "zoom",
            id="zoom",
            tooltip="The focused table alone, full width: every column (z again: back)",
            show=False,
        ),
        Binding(
            "question_mark", "app.help", "help", id="help", key_display="?", tooltip="Every key"
        ),
        Binding("d", "app.detach", "detach", id="detach", tooltip="Leave everything running"),
        Binding("q", "app.quit_console", "quit", id="quit", tooltip="Stop every process, quit"),
    ]

    def __init__(self, watch: bool = False) -> None:
        super().__init__(classes="-watch" if watch else None)
        self.watch_mode = watch
        self._filter_target: SyncTable | None = None
        self._zoomed: SyncTable | None = None

    def compose(self) -> ComposeResult:
        """Status bar, four tables, the log pane, the filter box and the footer."""
        yield StatusBar(id="status")
        yield CapacityWarnings(id="capacity")
        if self.watch_mode:
            yield from self._compose_watch()
            return
        with Horizontal(id="top"):
            yield ProcessTable(id="processes")
            yield QueueTable(id="queues")
        with Horizontal(id="middle"):
            yield TaskTable(id="tasks")
            yield WorkerTable(id="workers")
        with Vertical(id="logbox"):
            yield Static("output", id="logtitle")
            yield Log(id="log", max_lines=LOG_TAIL, auto_scroll=True)
        yield FilterInput(placeholder="filter: enter keeps, escape clears", id="filter")
        yield ConsoleFooter(show_command_palette=False, classes="-supervising")

    def _compose_watch(self) -> ComposeResult:
        """Watch mode: the workers on top, active tasks and queues below; no processes, no log."""
        with Horizontal(id="top"):
            yield WorkerTable(id="workers", watch=True)
        with Horizontal(id="middle"):
            yield TaskTable(id="tasks")
            yield QueueTable(id="queues")
        yield FilterInput(placeholder="filter: host, worker or queue; escape clears", id="filter")
        yield ConsoleFooter(show_command_palette=False)

    def main_table(self) -> SyncTable:
        """The table focused first: the processes, or in watch mode the workers."""
        return self.query_one(WorkerTable) if self.watch_mode else self.query_one(ProcessTable)

    def on_mount(self) -> None:
        """Title the tables (the workers title themselves) and focus the main one."""
        for table in self.query(SyncTable):
            if table.id in TITLES:
                table.border_title = TITLES[table.id]
        self.main_table().focus()

    def on_resize(self) -> None:
        """Below 100 columns the footer leaves out a few keys (``?`` lists them), so none is cut."""
        self.query_one(ConsoleFooter).set_class(self.size.width < SHORT_FOOTER_BELOW, "-short")

    def focused_table(self) -> SyncTable:
        """The table with focus (or the last filtered one, or the processes)."""
        if isinstance(self.focused, SyncTable):
            return self.focused
        return self._filter_target or self.main_table()

    def action_filter(self) -> None:
        """Open the filter box for the focused table."""
        table = self.focused_table()
        self._filter_target = table
        box = self.query_one(FilterInput)
        box.value = table.filter_text
        box.border_title = f"filter {table.border_title}"
        box.add_class("open")
        box.focus()

    @on(Input.Changed, "#filter")
    def filter_changed(self, event: Input.Changed) -> None:
        """Filter as the operator types."""
        if self._filter_target is not None:
            self._filter_target.set_filter(event.value)

    @on(Input.Submitted, "#filter")
    def filter_submitted(self) -> None:
        """Keep the filter and go back to the table."""
        self.action_close_filter(False)

    def action_close_filter(self, clear: bool) -> None:
        """Close the filter box; with ``clear`` also drop the filter."""
        box = self.query_one(FilterInput)
        target = self._filter_target or self.main_table()
        if clear:
            box.value = ""
            target.set_filter("")
        box.remove_class("open")
        target.focus()

    def action_sort(self) -> None:
        """Sort the focused table by its next column."""
        self.notify(self.focused_table().cycle_sort(), timeout=2)

    def action_zoom(self) -> None:
        """Show the focused table alone at full width (every column that fits), or go back."""
        table = self.focused_table()
        self._zoomed = None if self._zoomed is not None else table
        for box in self.query("#top, #middle, #logbox"):
            box.display = self._zoomed is None or table in box.children
        for other in self.query(SyncTable):
            other.display = self._zoomed is None or other is table
        table.focus()

    def action_sort_reverse(self) -> None:
        """Reverse the focused table's sort."""
        self.notify(self.focused_table().reverse_sort(), timeout=2)


def _own(bindings: Sequence[object]) -> list[Binding]:
    return [b for b in bindings if isinstance(b, Binding)]


def binding_sections() -> list[tuple[str, Sequence[Binding]]]:
    """Every binding, grouped by where it applies (the help screen lists these)."""
    anywhere = [
        *_own(DashboardScreen.BINDINGS),
        Binding("tab", "", "next pane", tooltip="Move focus to the next pane"),
        Binding("shift+tab", "", "previous pane", tooltip="Move focus back"),
        Binding("ctrl+p", "", "palette", tooltip="Command palette: every action by name"),
    ]
    cursor = [b for b in _own(LiveTable.BINDINGS) if b.action.startswith("cursor")]
    return [
        ("main screen", anywhere),
        ("processes", _own(ProcessTable.BINDINGS)),
        ("active tasks", _own(TaskTable.BINDINGS)),
        ("queues", _own(QueueTable.BINDINGS)),
        ("workers", _own(WorkerTable.BINDINGS)),
        ("any table", cursor),
        ("filter box", _own(FilterInput.BINDINGS)),
        (
            "log pane",
            [
                Binding("left,right", "", "scroll", tooltip="Long lines: tab to the log, scroll"),
                Binding("l", "", "full screen", tooltip="The whole output, searchable"),
            ],
        ),
        ("task detail", _own(TaskDetailScreen.BINDINGS)),
        ("recent failures", _own(FailuresScreen.BINDINGS)),
        ("process detail", _own(ProcessDetailScreen.BINDINGS)),
        ("logs", _own(LogScreen.BINDINGS)),
        ("quit dialog", _own(QuitScreen.BINDINGS)),
        ("confirm dialog", _own(ConfirmScreen.BINDINGS)),
        ("purge dialog", _own(TypeNameScreen.BINDINGS)),
        ("queue dialog", _own(QueueScreen.BINDINGS)),
    ]


def palette_commands(
    sections: Sequence[tuple[str, Sequence[Binding]]] | None = None,
) -> list[PaletteCommand]:
    """Every main-screen action as a command palette entry (keys from ``sections`` if given)."""
    commands = []
    for where, bindings in (sections or binding_sections())[:5]:
        for b in bindings:
            if not b.action:
                continue
            action = b.action if "." in b.action.split("(")[0] else f"screen.{b.action}"
            if b.action == "select_cursor":
                action = "app.task_detail"
            title = b.tooltip or b.description
            if where != "main screen":
                title = f"{title} ({where})"
            keys = b.key_display or b.key.split(",")[0]
            commands.append(PaletteCommand(title, f"key {keys}", action))
    return commands
