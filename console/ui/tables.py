"""Table widgets that update rows in place, sort, filter and fit their columns to their width."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich.cells import cell_len
from rich.text import Text
from textual.binding import Binding
from textual.events import Resize

from console.broker.capacity import BrokerCapacity
from console.cluster.models import TaskInfo
from console.queuestats import QueueRow
from console.supervision import ProcessSnapshot, ProcessState
from console.ui import format as fmt
from console.ui.livetable import PAD, Cell, LiveTable
from console.ui.process_detail import last_exit_note

SortValue = str | float

STATE_STYLE = {
    ProcessState.RUNNING: "bold green",
    ProcessState.STARTING: "yellow",
    ProcessState.BACKOFF: "bold yellow",
    ProcessState.STOPPING: "yellow",
    ProcessState.STOPPED: "dim",
    ProcessState.EXITED: "red",
    ProcessState.FATAL: "bold red reverse",
}


@dataclass(frozen=True)
class Column:
    """One table column: its key, its header, and whether it stays when the table is narrow."""

    key: str
    label: str
    narrow: bool = True


@dataclass(frozen=True)
class Row:
    """One row: its key, its cells (one per column) and the values it sorts by."""

    key: str
    cells: tuple[Cell, ...]
    sort: tuple[SortValue, ...]


def plain(cell: Cell) -> str:
    return cell.plain if isinstance(cell, Text) else cell


class SyncTable(LiveTable):
    """A LiveTable fed whole row lists, shown filtered and sorted.

    The columns marked ``narrow`` always show; each other one shows when it fits whole in the
    table's width, so no value is ever cut. The subtitle says how many are hidden.
    """

    COLUMNS: tuple[Column, ...] = ()
    WIDE_WIDTH = 60
    """Below this many columns of width, cells use their short forms."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.rows_in: list[Row] = []
        self.sort_index: int | None = None
        self.sort_reverse = False
        self.filter_text = ""
        self.narrow = False
        self._shown: tuple[Column, ...] = ()
        self._last_shown: tuple[Any, ...] | None = None

    def on_mount(self) -> None:
        """Create the columns once."""
        self.narrow = 0 < self.size.width < self.WIDE_WIDTH
        self._render_rows()

    def on_resize(self, event: Resize) -> None:
        """Drop or bring back the optional columns as the table's width changes."""
        narrow = event.size.width < self.WIDE_WIDTH
        if narrow != self.narrow and self._last_shown is not None:
            self.narrow = narrow
            self.show(*self._last_shown)  # cells have short and long forms
        else:
            self.narrow = narrow
            self._render_rows()

    def show(self, *data: Any) -> None:
        """Render the table's data (each table names its own arguments)."""
        raise NotImplementedError

    def wanted_columns(self) -> tuple[Column, ...]:
        """The columns this table offers now (all of them, unless a table says otherwise)."""
        return self.COLUMNS

    @property
    def hidden_columns(self) -> int:
        """How many columns do not fit the table's width now."""
        return len(self.wanted_columns()) - len(self._shown)

    def _fit_columns(self) -> tuple[Column, ...]:
        wanted = self.wanted_columns()
        room = self.scrollable_content_region.width
        if room <= 0:
            return wanted
        room += PAD  # the last column's trailing blank may go
        widths = [cell_len(c.label) for c in self.COLUMNS]
        for row in self.measured_rows():
            for i, cell in enumerate(row.cells):
                widths[i] = max(widths[i], cell_len(plain(cell)))
        pad = 2 * PAD
        pairs = [(w, c) for w, c in zip(widths, self.COLUMNS, strict=True) if c in wanted]
        used = sum(w + pad for w, c in pairs if c.narrow)
        shown = []
        for width, column in pairs:
            if not column.narrow:
                if used + width + pad > room:
                    continue
                used += width + pad
            shown.append(column)
        return tuple(shown)

    def measured_rows(self) -> Sequence[Row]:
        """The rows whose cells decide which columns fit (every row that may be shown)."""
        return self.rows_in

    # rows, sort, filter --------------------------------------------------------------------
    def show_rows(self, rows: Sequence[Row]) -> None:
        """Remember ``rows`` and show them filtered and sorted."""
        self.rows_in = list(rows)
        self._render_rows()

    def visible_rows(self) -> list[Row]:
        """The rows that pass the filter, in display order."""
        rows = self.rows_in
        if self.filter_text:
            needle = self.filter_text.lower()
            rows = [r for r in rows if any(needle in plain(c).lower() for c in r.cells)]
        if self.sort_index is not None:
            i = self.sort_index
            rows = sorted(rows, key=lambda r: sort_key(r.sort[i]), reverse=self.sort_reverse)
        return rows

    def cycle_sort(self) -> str:
        """Sort by the next column shown (after the last, back to the natural order)."""
        shown = [self.COLUMNS.index(c) for c in self._shown] or [0]
        later = [i for i in shown if self.sort_index is None or i > self.sort_index]
        self.sort_index = later[0] if later else None
        self.sort_reverse = False
        self._render_rows()
        return self.sort_label()

    def reverse_sort(self) -> str:
        """Flip the sort direction (sorting by the first column if unsorted)."""
        if self.sort_index is None:
            self.sort_index = 0
        self.sort_reverse = not self.sort_reverse
        self._render_rows()
        return self.sort_label()

    def sort_label(self) -> str:
        """How the table is sorted, in words."""
        if self.sort_index is None:
            return "natural order"
        arrow = "↓" if self.sort_reverse else "↑"
        return f"sorted by {self.COLUMNS[self.sort_index].label} {arrow}"

    def set_filter(self, text: str) -> None:
        """Show only rows with a cell containing ``text`` (case-insensitive)."""
        self.filter_text = text.strip()
        self._render_rows()

    def _render_rows(self) -> None:
        fit = self._fit_columns()
        if fit != self._shown:
            self._shown = fit
            self.set_columns([(column.key, column.label) for column in fit])
        rows = self.visible_rows()
        index = [self.COLUMNS.index(c) for c in self._shown]
        self.sync([(r.key, [r.cells[i] for i in index]) for r in rows])
        notes = []
        if self.hidden_columns:
            notes.append(f"+{self.hidden_columns} cols: z")
        if self.sort_index is not None:
            notes.append(self.sort_label().replace("sorted by ", "by "))
        if self.filter_text:
            notes.append(self.filter_note(rows))
        subtitle = " · ".join(notes)
        if self.border_subtitle != subtitle:
            self.border_subtitle = subtitle

    def filter_note(self, rows: Sequence[Row]) -> str:
        """How the filter is shown in the subtitle (``/text shown/total``)."""
        return f"/{self.filter_text} {len(rows)}/{len(self.rows_in)}"


def sort_key(value: SortValue) -> tuple[int, float, str]:
    if isinstance(value, str):
        return (1, 0.0, value.lower())
    return (0, value, "")


def num(value: float | int | None) -> float:
    return -1.0 if value is None else float(value)


class ProcessTable(SyncTable):
    """Supervised programs: state, pid, uptime, restarts, CPU and memory."""

    COLUMNS = (
        Column("program", "program"),
        Column("state", "state"),
        Column("pid", "pid"),
        Column("uptime", "uptime"),
        Column("restarts", "rst"),
        Column("cpu", "cpu", narrow=False),
        Column("mem", "mem", narrow=False),
        Column("info", "info", narrow=False),
    )
    BINDINGS = [
        Binding("r", "app.restart", "restart", id="restart", tooltip="Restart the process"),
        Binding("s", "app.toggle_selected", "stop/start", id="toggle", tooltip="Stop or start it"),
        Binding(
            "enter",
            "app.process_detail",
            "detail",
            id="process_detail",
            tooltip="Process detail: its last exits",
            show=False,
        ),
    ]
    WIDE_WIDTH = 50

    def show(self, processes: Sequence[ProcessSnapshot]) -> None:
        """Render process snapshots."""
        self._last_shown = (processes,)
        rows = []
        now = time.time()
        for p in processes:
            state = Text(str(p.state), style=STATE_STYLE.get(p.state, ""))
            # A running program's description only repeats pid and uptime, ticking every second.
            info = "" if p.state == ProcessState.RUNNING else p.description
            # A cron's role sits by its name: the info column is off screen on narrow terminals.
            name = f"{p.name} ({p.role})" if p.role and p.state == ProcessState.RUNNING else p.name
            if p.state in (ProcessState.RUNNING, ProcessState.STARTING):
                info = last_exit_note(p, now) or info
            if p.state == ProcessState.BACKOFF and p.backoff_remaining is not None:
                info = f"retry in {p.backoff_remaining:.0f}s"
            cells = (
                name,
                state,
                str(p.pid or "-"),
                fmt.duration(p.uptime),
                str(p.restarts),
                fmt.percent(p.cpu_percent),
                fmt.size(p.rss_bytes),
                info,
            )
            sort = (
                p.name,
                str(p.state),
                num(p.pid),
                num(p.uptime),
                float(p.restarts),
                num(p.cpu_percent),
                num(p.rss_bytes),
                info,
            )
            rows.append(Row(p.name, cells, sort))
        self.show_rows(rows)


class QueueTable(SyncTable):
    """Queue depth, rates, trend and time to drain; unacked, bytes and age when measured."""

    COLUMNS = (
        Column("queue", "queue"),
        Column("depth", "depth"),
        Column("in", "in/s", narrow=False),
        Column("out", "out/s", narrow=False),
        Column("trend", "trend"),
        Column("drain", "drain", narrow=False),
        Column("unacked", "unack"),
        Column("bytes", "mem", narrow=False),
        Column("age", "oldest", narrow=False),
    )
    CAPACITY_KEYS = ("unacked", "bytes", "age")
    """Columns shown only once the broker's capacity figures arrive."""
    WIDE_WIDTH = 56
    BINDINGS = [
        Binding("p", "app.purge", "purge", id="purge", tooltip="Empty the selected queue"),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.capacity_columns = False

    def wanted_columns(self) -> tuple[Column, ...]:
        """The columns, the capacity ones only once capacity figures have arrived."""
        if self.capacity_columns:
            return self.COLUMNS
        return tuple(c for c in self.COLUMNS if c.key not in self.CAPACITY_KEYS)

    def show(self, queues: Sequence[QueueRow], capacity: BrokerCapacity | None = None) -> None:
        """Render queue rows (with the capacity columns once capacity figures arrive)."""
        self._last_shown = (queues, capacity)
        wanted = capacity is not None and any(
            q.unacked is not None or q.bytes is not None for q in capacity.queues
        )
        if wanted and not self.capacity_columns:
            self.capacity_columns = True
        rows = []
        for q in queues:
            depth: Cell = str(q.ready) if q.exists else Text("missing", style="dim")
            drain = fmt.duration(q.drain_seconds) if q.drain_seconds is not None else "-"
            narrow = self.narrow or self.capacity_columns
            spark = fmt.sparkline(q.history, width=8 if narrow else 12)
            load = capacity.queue(q.name) if capacity is not None else None
            unacked = q.unacked if q.unacked is not None else (load.unacked if load else None)
            overdue = load.overdue if load else None
            size = load.bytes if load else None
            age = load.oldest_age if load else None
            cells = (
                q.name,
                depth,
                fmt.rate(q.in_rate),
                fmt.rate(q.out_rate),
                spark,
                drain,
                _unacked_cell(unacked, overdue),
                fmt.size(size) if size else "-",
                fmt.duration(age),
            )
            sort = (
                q.name,
                num(q.ready),
                num(q.in_rate),
                num(q.out_rate),
                num(q.ready),
                num(q.drain_seconds),
                num(unacked),
                num(size),
                num(age),
            )
            rows.append(Row(q.name, cells, sort))
        self.show_rows(rows)


def _unacked_cell(unacked: int | None, overdue: int | None) -> Cell:
    """Unacked count; those past the visibility timeout in red after it ("5 2!")."""
    if unacked is None:
        return "-"
    if not overdue:
        return str(unacked)
    return Text.assemble(str(unacked), " ", (f"{overdue}!", "bold red"))


class TaskTable(SyncTable):
    """Tasks running now."""

    COLUMNS = (
        Column("task", "task"),
        Column("id", "id"),
        Column("worker", "worker", narrow=False),
        Column("runtime", "run"),
        Column("args", "args", narrow=False),
    )
    BINDINGS = [
        Binding("enter", "select_cursor", "detail", id="task_detail", tooltip="Task detail"),
        Binding("x", "app.revoke", "revoke", id="revoke", tooltip="Revoke the selected task"),
        Binding(
            "X", "app.terminate", "terminate", id="terminate", tooltip="Revoke and kill the task"
        ),
    ]

    def show(self, tasks: Sequence[TaskInfo], now: float) -> None:
        """Render active tasks."""
        self._last_shown = (tasks, now)
        rows = []
        nodes = {t.worker or "-" for t in tasks}
        # A worker's name alone, unless two hosts have workers of that name among these tasks.
        short = len({node.split("@")[0] for node in nodes}) == len(nodes)
        for t in tasks:
            runtime = now - t.started if t.started else None
            name = t.name or "?"
            cells = (
                name if not self.narrow else name.rsplit(".", 1)[-1],
                t.uuid[:8],
                (t.worker or "-").split("@")[0] if short else t.worker or "-",
                fmt.duration(runtime),
                t.args[:40],
            )
            sort = (name, t.uuid, t.worker or "", num(runtime), t.args)
            rows.append(Row(t.uuid, cells, sort))
        self.show_rows(rows)
