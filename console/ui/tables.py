"""Table widgets that update rows in place, so refreshes neither flicker nor lose the cursor."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import DataTable

from console.broker.health import BrokerHealth
from console.cluster import TaskInfo, WorkerInfo
from console.queuestats import QueueRow
from console.supervision import ProcessSnapshot, ProcessState
from console.ui import format as fmt

Cell = str | Text

STATE_STYLE = {
    ProcessState.RUNNING: "bold green",
    ProcessState.STARTING: "yellow",
    ProcessState.BACKOFF: "bold yellow",
    ProcessState.STOPPING: "yellow",
    ProcessState.STOPPED: "dim",
    ProcessState.EXITED: "red",
    ProcessState.FATAL: "bold red reverse",
}


class SyncTable(DataTable[Cell]):
    """A DataTable whose rows are replaced by key: changed cells update, others stay."""

    COLUMNS: tuple[str, ...] = ()

    def on_mount(self) -> None:
        """Create the columns once."""
        self.cursor_type = "row"
        self.zebra_stripes = False
        for label in self.COLUMNS:
            self.add_column(label, key=label)

    def sync(self, rows: Sequence[tuple[str, Sequence[Cell]]]) -> None:
        """Make the table show exactly ``rows`` (key, cells), in order."""
        wanted = [key for key, _ in rows]
        present = [str(k.value) for k in self.rows]
        if present != wanted:
            cursor_key = self.selected_key()
            self.clear()
            for key, cells in rows:
                self.add_row(*cells, key=key)
            if cursor_key in wanted:
                self.move_cursor(row=wanted.index(cursor_key), animate=False)
            return
        for key, cells in rows:
            for label, cell in zip(self.COLUMNS, cells, strict=True):
                if self.get_cell(key, label) != cell:
                    self.update_cell(key, label, cell)

    def selected_key(self) -> str | None:
        """Key of the row under the cursor, if any."""
        if not self.row_count:
            return None
        try:
            key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        except Exception:
            return None
        return None if key.value is None else str(key.value)


class ProcessTable(SyncTable):
    """Supervised programs: state, pid, uptime, restarts, CPU and memory."""

    COLUMNS = ("program", "state", "pid", "uptime", "restarts", "cpu", "mem", "info")

    def show(self, processes: Sequence[ProcessSnapshot]) -> None:
        """Render process snapshots."""
        rows = []
        for p in processes:
            state = Text(str(p.state), style=STATE_STYLE.get(p.state, ""))
            info = p.description
            if p.state == ProcessState.BACKOFF and p.backoff_remaining is not None:
                info = f"retry in {p.backoff_remaining:.0f}s"
            rows.append(
                (
                    p.name,
                    (
                        p.name,
                        state,
                        str(p.pid or "-"),
                        fmt.duration(p.uptime),
                        str(p.restarts),
                        fmt.percent(p.cpu_percent),
                        fmt.size(p.rss_bytes),
                        info,
                    ),
                )
            )
        self.sync(rows)


class QueueTable(SyncTable):
    """Queue depth, rates, trend and time to drain."""

    COLUMNS = ("queue", "depth", "in/s", "out/s", "trend", "drain")

    def show(self, queues: Sequence[QueueRow]) -> None:
        """Render queue rows."""
        rows = []
        for q in queues:
            depth: Cell = str(q.ready) if q.exists else Text("missing", style="dim")
            drain = fmt.duration(q.drain_seconds) if q.drain_seconds is not None else "-"
            cells = (
                q.name,
                depth,
                fmt.rate(q.in_rate),
                fmt.rate(q.out_rate),
                fmt.sparkline(q.history),
                drain,
            )
            rows.append((q.name, cells))
        self.sync(rows)


class TaskTable(SyncTable):
    """Tasks running now."""

    COLUMNS = ("task", "id", "worker", "runtime", "args")

    def show(self, tasks: Sequence[TaskInfo], now: float) -> None:
        """Render active tasks."""
        rows = []
        for t in tasks:
            runtime = now - t.started if t.started else None
            cells = (
                t.name or "?",
                t.uuid[:8],
                (t.worker or "-").split("@")[0],
                fmt.duration(runtime),
                t.args[:40],
            )
            rows.append((t.uuid, cells))
        self.sync(rows)


class WorkerTable(SyncTable):
    """Every worker in the cluster, the console's own and remote ones."""

    COLUMNS = ("worker", "status", "where", "active", "done", "failed", "pool")

    def show(self, workers: Sequence[WorkerInfo], remote: frozenset[str]) -> None:
        """Render workers."""
        rows = []
        for w in workers:
            status = Text("online", "green") if w.online else Text("offline", "bold red")
            where = Text("remote", "magenta") if w.hostname in remote else "local"
            cells = (
                w.hostname,
                status,
                where,
                str(w.active),
                str(w.processed),
                str(w.failed),
                str(w.pool_size or "-"),
            )
            rows.append((w.hostname, cells))
        self.sync(rows)


def broker_line(url: str, health: BrokerHealth) -> Text:
    """The status bar's broker part: URL, state and round trip."""
    style = {"connected": "bold green", "connecting": "bold yellow"}.get(health.state, "bold red")
    text = Text.assemble(("broker ", "dim"), (url, "bold"), " ", (f"● {health.state}", style))
    if health.state == "connected" and health.rtt_ms is not None:
        text.append(f"  {health.rtt_ms:.1f}ms", "dim")
    if health.server_version:
        text.append(f" v{health.server_version}", "dim")
    if health.reason and health.state != "connected":
        text.append(f" ({health.reason})", "red")
    if health.reconnects:
        text.append(f" reconnects {health.reconnects}", "dim")
    return text
