"""The process detail: a program's state and its last exits (enter on a process)."""

from __future__ import annotations

import time
from datetime import datetime

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from console.supervision import ProcessSnapshot
from console.supervision.model import ExitRecord
from console.ui import format as fmt


def last_exit_note(process: ProcessSnapshot, now: float) -> str:
    """``killed by SIGKILL 12s ago`` for a live process whose last exit was unexpected, else ''."""
    if not process.exits or process.exits[-1].expected:
        return ""
    last = process.exits[-1]
    return f"{last.cause} {fmt.duration(now - last.at)} ago"


def _exit_row(record: ExitRecord, now: float) -> tuple[str, Text, str, Text]:
    when = datetime.fromtimestamp(record.at).strftime("%Y-%m-%d %H:%M:%S")
    cause = Text(record.cause, "" if record.expected else "bold red")
    expected = Text(
        "expected" if record.expected else "unexpected", "dim" if record.expected else ""
    )
    return (
        f"{when} ({fmt.duration(now - record.at)} ago)",
        cause,
        fmt.duration(record.ran),
        expected,
    )


def process_details(process: ProcessSnapshot, now: float) -> RenderableType:
    """The program's fields, then its recorded exits, newest first."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for label, value in (
        ("program", process.name),
        ("group", process.group or "-"),
        ("state", Text(str(process.state), "bold")),
        ("pid", str(process.pid or "-")),
        ("uptime", fmt.duration(process.uptime)),
        ("restarts", str(process.restarts)),
        ("info", process.description),
    ):
        grid.add_row(label, value)
    if not process.exits:
        return Group(grid, Text(""), Text("no exit recorded yet", "dim"))
    exits = Table(title=f"last {len(process.exits)} exits", title_justify="left", expand=False)
    for header in ("when", "how", "had run", ""):
        exits.add_column(header, no_wrap=True)
    for record in reversed(process.exits):
        exits.add_row(*_exit_row(record, now))
    return Group(grid, Text(""), exits)


class ProcessDetailScreen(Screen[None]):
    """One program as it was when opened: its fields and its last exits."""

    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "back", id="process_back", tooltip="back"),
    ]

    def __init__(self, process: ProcessSnapshot, now: float | None = None) -> None:
        super().__init__()
        self.process = process
        self.now = now

    def compose(self) -> ComposeResult:
        """Title, the detail and the footer."""
        yield Static(Text(f"process {self.process.name}", "bold"), classes="screen-title")
        with VerticalScroll(id="detail"):
            yield Static(process_details(self.process, self.now or time.time()), id="detail-body")
        yield Footer(show_command_palette=False)
