"""Recent failures: the last failed tasks, filterable by task and worker; enter shows one."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from console.cluster.models import TaskInfo
from console.ui import format as fmt
from console.ui.livetable import LiveTable
from console.ui.tables import Column, Row, SyncTable


class FailureTable(SyncTable):
    """Failed tasks, newest first: when, task, worker, exception."""

    COLUMNS = (
        Column("when", "when"),
        Column("task", "task"),
        Column("worker", "worker"),
        Column("exception", "exception", narrow=False),
    )

    def show(self, failures: Sequence[TaskInfo], now: float) -> None:
        """Render the failures."""
        self._last_shown = (failures, now)
        rows = []
        for t in failures:
            finished = t.finished or t.started or t.received
            when = "-"
            if finished is not None:
                clock = datetime.fromtimestamp(finished).strftime("%H:%M:%S")
                when = f"{clock} ({fmt.duration(now - finished)} ago)"
            exception = (t.exception or "").splitlines()[0] if t.exception else ""
            cells = (when, t.name or "?", (t.worker or "-"), Text(exception, "red"))
            sort = (-(finished or 0.0), t.name or "", t.worker or "", exception)
            rows.append(Row(t.uuid, cells, sort))
        self.show_rows(rows)


class FailuresScreen(Screen[None]):
    """The last failed tasks as the console saw them, refreshed with the main screen."""

    BINDINGS = [
        Binding("escape", "app.pop_screen", "back", id="failures_back", tooltip="back"),
        Binding("slash", "focus_filter", "filter", id="failures_filter", key_display="/"),
    ]

    def __init__(
        self,
        latest: Callable[[], tuple[Sequence[TaskInfo], float]],
        open_task: Callable[[str], None],
        interval: float,
    ) -> None:
        super().__init__()
        self._latest = latest  # the last poll's failures and when it was taken
        self._open_task = open_task
        self._interval = interval

    def compose(self) -> ComposeResult:
        """Title, the filter box, the table and the footer."""
        yield Static(Text("recent failures (newest first)", "bold"), classes="screen-title")
        yield Input(placeholder="/ filter by task or worker", id="failures-filter")
        yield FailureTable(id="failures")
        yield Footer(show_command_palette=False)

    def on_mount(self) -> None:
        """Fill the table, focus it, and follow the main screen's refreshes."""
        self.refresh_rows()
        self.query_one(FailureTable).focus()
        self.set_interval(self._interval, self.refresh_rows)

    def refresh_rows(self) -> None:
        """Show the failures the last poll brought."""
        table = self.query_one(FailureTable)
        failures, now = self._latest()
        table.show(failures, now)
        table.border_title = f"{len(failures)} failed tasks"

    def action_focus_filter(self) -> None:
        """Type to filter; enter or escape goes back to the table."""
        self.query_one("#failures-filter", Input).focus()

    @on(Input.Changed, "#failures-filter")
    def filter_changed(self, event: Input.Changed) -> None:
        """Filter as the operator types."""
        self.query_one(FailureTable).set_filter(event.value)

    @on(Input.Submitted, "#failures-filter")
    def filter_done(self) -> None:
        """Back to the table, the filter kept."""
        self.query_one(FailureTable).focus()

    @on(LiveTable.RowSelected, "#failures")
    def failure_selected(self, event: LiveTable.RowSelected) -> None:
        """Enter on a failure: its detail, with the traceback while the monitor holds it."""
        self._open_task(event.key)
