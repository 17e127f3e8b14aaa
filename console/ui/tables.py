"""Table widgets that update rows in place, sort, filter and fit their columns to their width."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from rich.text import Text
from textual.binding import Binding
from textual.events import Resize

from console.cluster import TaskInfo, WorkerInfo
from console.queuestats import QueueRow
from console.supervision import ProcessSnapshot, ProcessState
from console.ui import format as fmt
from console.ui.livetable import Cell, LiveTable
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


def _plain(cell: Cell) -> str:
    return cell.plain if isinstance(cell, Text) else cell


class SyncTable(LiveTable):
    """A LiveTable fed whole row lists, shown filtered and sorted; narrow widths drop columns."""

    COLUMNS: tuple[Column, ...] = ()
    WIDE_WIDTH = 60
    """Below this many columns of width, only the columns marked ``narrow`` are shown."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.rows_in: list[Row] = []
        self.sort_index: int | None = None
        self.sort_reverse = False
        self.filter_text = ""
        self.narrow = False
        self._shown: tuple[Column, ...] = ()

    def on_mount(self) -> None:
        """Create the columns once."""
        self._set_columns(0 < self.size.width < self.WIDE_WIDTH)
        self._render_rows()

    def on_resize(self, event: Resize) -> None:
        """Drop or bring back the optional columns as the table's width changes."""
        narrow = event.size.width < self.WIDE_WIDTH
        if narrow != self.narrow:
            self._set_columns(narrow)
            self._render_rows()

    def _set_columns(self, narrow: bool) -> None:
        self.narrow = bool(narrow)
        self._shown = tuple(c for c in self.COLUMNS if c.narrow or not self.narrow)
        self.set_columns([(column.key, column.label) for column in self._shown])

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
            rows = [r for r in rows if any(needle in _plain(c).lower() for c in r.cells)]
        if self.sort_index is not None:
            i = self.sort_index
            rows = sorted(rows, key=lambda r: _sort_key(r.sort[i]), reverse=self.sort_reverse)
        return rows

    def cycle_sort(self) -> str:
        """Sort by the next column (after the last, back to the natural order)."""
        if self.sort_index is None:
            self.sort_index = 0
        elif self.sort_index + 1 < len(self.COLUMNS):
            self.sort_index += 1
        else:
            self.sort_index = None
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
        rows = self.visible_rows()
        index = [self.COLUMNS.index(c) for c in self._shown]
        self.sync([(r.key, [r.cells[i] for i in index]) for r in rows])
        notes = []
        if self.sort_index is not None:
            notes.append(self.sort_label().replace("sorted by ", "by "))
        if self.filter_text:
            notes.append(f"/{self.filter_text} {len(rows)}/{len(self.rows_in)}")
        subtitle = " · ".join(notes)
        if self.border_subtitle != subtitle:
            self.border_subtitle = subtitle


def _sort_key(value: SortValue) -> tuple[int, float, str]:
    if isinstance(value, str):
        return (1, 0.0, value.lower())
    return (0, value, "")


def _num(value: float | int | None) -> float:
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
        rows = []
        now = time.time()
        for p in processes:
            state = Text(str(p.state), style=STATE_STYLE.get(p.state, ""))
            # A running program's description only repeats pid and uptime, ticking every second.
            info = "" if p.state == ProcessState.RUNNING else p.description
            if p.state in (ProcessState.RUNNING, ProcessState.STARTING):
                info = last_exit_note(p, now) or info
            if p.state == ProcessState.BACKOFF and p.backoff_remaining is not None:
                info = f"retry in {p.backoff_remaining:.0f}s"
            cells = (
                p.name,
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
                _num(p.pid),
                _num(p.uptime),
                float(p.restarts),
                _num(p.cpu_percent),
                _num(p.rss_bytes),
                info,
            )
            rows.append(Row(p.name, cells, sort))
        self.show_rows(rows)


class QueueTable(SyncTable):
    """Queue depth, rates, trend and time to drain."""

    COLUMNS = (
        Column("queue", "queue"),
        Column("depth", "depth"),
        Column("in", "in/s", narrow=False),
        Column("out", "out/s", narrow=False),
        Column("trend", "trend"),
        Column("drain", "drain", narrow=False),
    )
    WIDE_WIDTH = 56
    BINDINGS = [
        Binding("p", "app.purge", "purge", id="purge", tooltip="Empty the selected queue"),
    ]

    def show(self, queues: Sequence[QueueRow]) -> None:
        """Render queue rows."""
        rows = []
        for q in queues:
            depth: Cell = str(q.ready) if q.exists else Text("missing", style="dim")
            drain = fmt.duration(q.drain_seconds) if q.drain_seconds is not None else "-"
            spark = fmt.sparkline(q.history, width=8 if self.narrow else 12)
            cells = (q.name, depth, fmt.rate(q.in_rate), fmt.rate(q.out_rate), spark, drain)
            sort = (
                q.name,
                _num(q.ready),
                _num(q.in_rate),
                _num(q.out_rate),
                _num(q.ready),
                _num(q.drain_seconds),
            )
            rows.append(Row(q.name, cells, sort))
        self.show_rows(rows)


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
        rows = []
        for t in tasks:
            runtime = now - t.started if t.started else None
            name = t.name or "?"
            cells = (
                name if not self.narrow else name.rsplit(".", 1)[-1],
                t.uuid[:8],
                (t.worker or "-").split("@")[0],
                fmt.duration(runtime),
                t.args[:40],
            )
            sort = (name, t.uuid, t.worker or "", _num(runtime), t.args)
            rows.append(Row(t.uuid, cells, sort))
        self.show_rows(rows)


class WorkerTable(SyncTable):
    """Every worker in the cluster, the console's own and remote ones."""

    COLUMNS = (
        Column("worker", "worker"),
        Column("status", "status"),
        Column("where", "where"),
        Column("active", "act"),
        Column("done", "done", narrow=False),
        Column("failed", "failed", narrow=False),
        Column("pool", "pool", narrow=False),
    )
    BINDINGS = [
        Binding(
            "greater_than_sign",
            "app.pool(1)",
            "pool+",
            id="pool_grow",
            key_display=">",
            tooltip="Add a pool process to the selected worker",
        ),
        Binding(
            "less_than_sign",
            "app.pool(-1)",
            "pool-",
            id="pool_shrink",
            key_display="<",
            tooltip="Remove a pool process from the selected worker",
        ),
    ]

    def show(self, workers: Sequence[WorkerInfo], remote: frozenset[str]) -> None:
        """Render workers."""
        rows = []
        for w in workers:
            status = Text("online", "green") if w.online else Text("offline", "bold red")
            where = "remote" if w.hostname in remote else "local"
            cells = (
                w.hostname,
                status,
                Text(where, "magenta") if where == "remote" else where,
                str(w.active),
                str(w.processed),
                str(w.failed),
                str(w.pool_size or "-"),
            )
            sort = (
                w.hostname,
                status.plain,
                where,
                float(w.active),
                float(w.processed),
                float(w.failed),
                _num(w.pool_size),
            )
            rows.append(Row(w.hostname, cells, sort))
        self.show_rows(rows)
