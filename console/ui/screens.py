"""Full screens over the dashboard: task detail, a process's whole log, and the help."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from rich.console import Group, RenderableType
from rich.highlighter import Highlighter
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Log, Static

from console.cluster.models import FINISHED_STATES, TaskInfo
from console.ui import format as fmt


def appended(previous: Sequence[str], current: Sequence[str]) -> list[str] | None:
    """Lines of ``current`` that follow ``previous``'s tail, or None when they do not line up."""
    if not previous:
        return None if current else []
    tail = list(previous[-3:])
    for end in range(len(current), len(tail) - 1, -1):
        if list(current[end - len(tail) : end]) == tail:
            return list(current[end:])
    return None


def _when(stamp: float | None) -> str:
    if stamp is None:
        return "-"
    return datetime.fromtimestamp(stamp, tz=UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


def task_details(task: TaskInfo, now: float) -> RenderableType:
    """The fields of one task as a two-column grid, with its traceback below when it has one."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    runtime = task.runtime
    if runtime is None and task.started is not None and task.finished is None:
        runtime = now - task.started
    rows: list[tuple[str, str | Text]] = [
        ("task", task.name or "?"),
        ("id", task.uuid),
        ("state", Text(task.state, "bold")),
        ("worker", task.worker or "-"),
        ("args", task.args or "()"),
        ("kwargs", task.kwargs or "{}"),
        ("received", _when(task.received)),
        ("started", _when(task.started)),
        ("finished", _when(task.finished)),
        (
            "runtime",
            "-"
            if runtime is None
            else f"{runtime:.3f}s"
            if runtime < 60
            else fmt.duration(runtime),
        ),
        ("retries", str(task.retries)),
    ]
    if task.result is not None:
        rows.append(("result", task.result))
    elif task.exception is None:
        rows.append(("result", Text("(not finished)", "dim")))
    if task.exception is not None:
        rows.append(("exception", Text(task.exception, "bold red")))
    for label, value in rows:
        grid.add_row(label, value)
    if not task.traceback:
        return grid
    traceback = Text(task.traceback.rstrip(), no_wrap=True, overflow="ellipsis")
    return Group(grid, Text(""), Text("traceback", "bold"), traceback)


class TaskDetailScreen(Screen[None]):
    """Everything known about one task: arguments, timestamps, result or traceback."""

    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "back", id="detail_back", tooltip="back"),
        Binding("x", "revoke(False)", "revoke", id="detail_revoke", tooltip="Revoke this task"),
        Binding(
            "X", "revoke(True)", "terminate", id="detail_terminate", tooltip="Revoke and kill it"
        ),
    ]

    def __init__(
        self, task: TaskInfo, on_revoke: Callable[[str, bool], None], now: float | None = None
    ) -> None:
        super().__init__()
        self.task_info = task
        self.now = now
        self._on_revoke = on_revoke

    def compose(self) -> ComposeResult:
        """Title, the detail grid and the footer."""
        yield Static(Text(f"task {self.task_info.uuid}", "bold"), classes="screen-title")
        with VerticalScroll(id="detail"):
            yield Static(task_details(self.task_info, self.now or time.time()), id="detail-body")
        yield Footer(show_command_palette=False)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """``x`` / ``X`` only for a task that can still be revoked (not one that has finished)."""
        if action == "revoke":
            return self.task_info.state not in FINISHED_STATES
        return True

    def action_revoke(self, terminate: bool) -> None:
        """Revoke (or terminate) the task shown, after a confirmation."""
        self._on_revoke(self.task_info.uuid, terminate)


class SearchHighlighter(Highlighter):
    """Highlights every occurrence of the search term."""

    def __init__(self) -> None:
        self.term = ""

    def highlight(self, text: Text) -> None:
        """Reverse-video the term, case-insensitively."""
        if self.term:
            text.highlight_words([self.term], "reverse bold", case_sensitive=False)


class LogScreen(Screen[None]):
    """A process's whole output: follows new lines, searches with ``/``, ``n`` and ``N``."""

    BINDINGS = [
        Binding("escape,l", "app.pop_screen", "back", id="logs_back", tooltip="back"),
        Binding("f", "follow", "follow", id="logs_follow", tooltip="Follow new output on / off"),
        Binding("slash", "search", "search", id="logs_search", key_display="/"),
        Binding("n", "next_match(1)", "next", id="logs_next", tooltip="Next match"),
        Binding("N", "next_match(-1)", "previous", id="logs_prev", tooltip="Previous match"),
        Binding("g", "top", "top", id="logs_top", tooltip="First line", show=False),
        Binding("G", "bottom", "end", id="logs_end", tooltip="Last line", show=False),
    ]

    def __init__(
        self, name: str, fetch: Callable[[], list[str]], interval: float, live: bool = True
    ) -> None:
        super().__init__()
        self.process_name = name
        self._fetch = fetch
        self._interval = interval
        self._live = live
        self.lines: list[str] = []
        self.follow = True
        self.matches: list[int] = []
        self.match_index = -1
        self._highlighter = SearchHighlighter()

    def compose(self) -> ComposeResult:
        """Title, the log, a hidden search box and the footer."""
        yield Static("", id="logs-title", classes="screen-title")
        log = Log(id="fulllog", highlight=True, auto_scroll=True)
        log.highlighter = self._highlighter
        yield log
        yield Input(placeholder="search, enter to find", id="logs-query", classes="hidden")
        yield Footer(show_command_palette=False)

    def on_mount(self) -> None:
        """Load the output and keep it current."""
        self._retitle()
        self.refresh_lines()
        if self._live:
            self.set_interval(self._interval, self.refresh_lines)

    @work(thread=True, exclusive=True, group="logs", exit_on_error=False)
    def refresh_lines(self) -> None:
        """Fetch the output off the UI thread."""
        lines = self._fetch()
        self.app.call_from_thread(self._show, lines)

    def _show(self, lines: list[str]) -> None:
        log = self.query_one(Log)
        more = appended(self.lines, lines)
        self.lines = lines
        if more is None:
            log.clear()
            log.write_lines(lines, scroll_end=self.follow)
        elif more:
            log.write_lines(more, scroll_end=self.follow)
        if self._highlighter.term:
            self._find(self._highlighter.term, keep=True)
        self._retitle()

    def _retitle(self) -> None:
        parts = [f"output of {self.process_name}", f"{len(self.lines)} lines"]
        parts.append("following" if self.follow else "paused (f follows)")
        if self._highlighter.term:
            found = len(self.matches)
            where = f"{self.match_index + 1}/{found}" if found else "no match"
            parts.append(f"/{self._highlighter.term}: {where}")
        self.query_one("#logs-title", Static).update(" · ".join(parts))

    def action_follow(self) -> None:
        """Toggle following new output."""
        self.follow = not self.follow
        log = self.query_one(Log)
        log.auto_scroll = self.follow
        if self.follow:
            log.scroll_end(animate=False)
        self._retitle()

    def action_search(self) -> None:
        """Open the search box."""
        box = self.query_one("#logs-query", Input)
        box.remove_class("hidden")
        box.value = self._highlighter.term
        box.focus()

    @on(Input.Submitted, "#logs-query")
    def search_submitted(self, event: Input.Submitted) -> None:
        """Highlight the term and jump to its last match."""
        event.input.add_class("hidden")
        self.query_one(Log).focus()
        self._highlighter.term = event.value.strip()
        log = self.query_one(Log)
        log.clear()
        log.write_lines(self.lines, scroll_end=False)
        self._find(self._highlighter.term, keep=False)
        self._retitle()

    def _find(self, term: str, keep: bool) -> None:
        needle = term.lower()
        self.matches = [i for i, line in enumerate(self.lines) if needle and needle in line.lower()]
        if not keep or self.match_index >= len(self.matches):
            self.match_index = len(self.matches) - 1
            if self.matches:
                self.follow = False
                self.query_one(Log).auto_scroll = False
                self._jump()

    def _jump(self) -> None:
        if 0 <= self.match_index < len(self.matches):
            log = self.query_one(Log)
            line = self.matches[self.match_index]
            log.scroll_to(y=max(line - log.size.height // 2, 0), animate=False)

    def action_next_match(self, step: int) -> None:
        """Go to the next (``step`` 1) or previous (-1) match."""
        if not self.matches:
            return
        self.match_index = (self.match_index + step) % len(self.matches)
        self.follow = False
        self.query_one(Log).auto_scroll = False
        self._jump()
        self._retitle()

    def action_top(self) -> None:
        """Go to the first line and stop following."""
        self.follow = False
        log = self.query_one(Log)
        log.auto_scroll = False
        log.scroll_home(animate=False)
        self._retitle()

    def action_bottom(self) -> None:
        """Go to the last line and follow again."""
        self.action_follow() if not self.follow else self.query_one(Log).scroll_end(animate=False)


class HelpScreen(Screen[None]):
    """Every key, generated from the bindings, grouped by where it applies."""

    BINDINGS = [Binding("escape,q,question_mark", "app.pop_screen", "back", id="help_back")]

    def __init__(self, sections: Sequence[tuple[str, Sequence[Binding]]]) -> None:
        super().__init__()
        self.sections = sections

    def compose(self) -> ComposeResult:
        """Title, the key table and the footer."""
        title = Text("keys: every binding, by where it applies", "bold")
        yield Static(title, classes="screen-title")
        yield DataTable(id="keys", cursor_type="row", zebra_stripes=True)
        yield Footer(show_command_palette=False)

    def on_mount(self) -> None:
        """Fill the table from the bindings."""
        table: DataTable[str] = self.query_one(DataTable)
        table.add_columns("where", "key", "what it does")
        for where, bindings in self.sections:
            for binding in bindings:
                keys = binding.key_display or " ".join(
                    self.app.get_key_display(Binding(k, "")) for k in binding.key.split(",")
                )
                table.add_row(where, keys, binding.tooltip or binding.description)
        table.focus()
