"""The workers pane: every worker of the cluster, grouped by host when there are several.

A host is the part of a node name after ``@``. With workers on two hosts or more, each host gets
a row of its own (workers online/total, active tasks, processed, failed, pool processes) that
folds its workers away, so fifty hosts of eight workers still fit a small terminal. The filter
keeps the workers whose node name (host included) or any queue contains the text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType

from console.cluster.models import WorkerInfo, host_of, nodesplit
from console.ui.livetable import Cell
from console.ui.tables import Column, Row, SyncTable, num, sort_key

HOST_KEY = "host "
"""Row keys of host rows start with this (a node name never holds a space)."""
EXPAND_UP_TO = 20
"""In watch mode, hosts the operator has not folded or opened are open while hosts and workers
shown make no more rows than this, folded otherwise (the host rows alone then fill the pane).
A supervising console opens the hosts of its own workers and folds the others."""
OPEN, FOLDED = "▾", "▸"
QUEUES_WIDTH = 40
"""A worker's queues show by name up to this many characters, else counted (``/`` finds them)."""


class WorkerTable(SyncTable):
    """Every worker in the cluster, the console's own and remote ones, grouped by host."""

    COLUMNS = (
        Column("worker", "worker"),
        Column("status", "status"),
        Column("where", "where"),
        Column("active", "act"),
        Column("done", "done", narrow=False),
        Column("failed", "failed", narrow=False),
        Column("pool", "pool", narrow=False),
        Column("queues", "queues", narrow=False),
    )
    BINDINGS: ClassVar[list[BindingType]] = [
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
        Binding(
            "P",
            "app.pool_restart",
            "pool restart",
            id="pool_restart",
            tooltip="Replace the worker's pool processes (where the worker allows it)",
        ),
        Binding(
            "u",
            "app.consume(True)",
            "consume",
            id="consume_add",
            tooltip="Make the worker start consuming a queue (use it)",
        ),
        Binding(
            "U",
            "app.consume(False)",
            "cancel",
            id="consume_cancel",
            tooltip="Make the worker stop consuming a queue (unuse it)",
        ),
        Binding(
            "S",
            "app.shutdown_worker",
            "shutdown",
            id="worker_shutdown",
            tooltip="Warm shutdown of the worker: its tasks finish, then it exits",
        ),
        Binding(
            "space",
            "app.toggle_host",
            "fold",
            id="host_toggle",
            show=False,
            tooltip="Fold or open the selected host (enter on a host row too)",
        ),
        Binding(
            "e",
            "app.toggle_hosts",
            "all hosts",
            id="hosts_all",
            show=False,
            tooltip="Fold every host, or open them all when all are folded",
        ),
    ]

    def __init__(self, *, id: str | None = None, watch: bool = False) -> None:
        super().__init__(id=id)
        self.watch_mode = watch
        self.expanded: dict[str, bool] = {}
        """The operator's choice per host (hosts without one follow EXPAND_UP_TO)."""
        self.grouped = False
        self._workers: dict[str, WorkerInfo] = {}
        self._remote: frozenset[str] = frozenset()
        self._heads: list[Row] = []
        self._open_default = True
        self._local_hosts: set[str] = set()
        self._row_cache: dict[str, tuple[WorkerInfo, Row]] = {}
        """Each worker's row, kept while the worker is unchanged (rows cost more than checks)."""
        self._shown_as: tuple[object, ...] | None = None

    def wanted_columns(self) -> tuple[Column, ...]:
        """Every column; in watch mode not ``where`` (every worker is remote there)."""
        if self.watch_mode:
            return tuple(c for c in self.COLUMNS if c.key != "where")
        return self.COLUMNS

    # data -----------------------------------------------------------------------------------
    def show(self, workers: Sequence[WorkerInfo], remote: frozenset[str]) -> None:
        """Render workers (``remote``: the node names this console does not supervise)."""
        self._last_shown = (workers, remote)
        shown_as = (tuple(workers), remote, self.narrow)
        if shown_as == self._shown_as:
            return  # a quiet refresh: nothing to redo
        self._shown_as = shown_as
        self._workers = {w.hostname: w for w in workers}
        hosts = {host_of(w.hostname) for w in workers}
        if (len(hosts) > 1, remote) != (self.grouped, self._remote):
            self._row_cache = {}  # names and where-cells change with these
        self._remote = remote
        self.grouped = len(hosts) > 1
        self._local_hosts = {host_of(w.hostname) for w in workers if w.hostname not in remote}
        rows = [self._cached_row(w) for w in workers]
        if len(self._row_cache) > 2 * len(workers) + 64:  # forget workers long gone
            self._row_cache = {w.hostname: self._row_cache[w.hostname] for w in workers}
        self._heads = [self._host_row(host, members) for host, members in self._by_host(rows)]
        self.show_rows(rows)

    def _where(self, hostname: str) -> str:
        return "remote" if hostname in self._remote else "local"

    def _cached_row(self, w: WorkerInfo) -> Row:
        known = self._row_cache.get(w.hostname)
        if known is not None and known[0] == w:
            return known[1]
        row = self._worker_row(w)
        self._row_cache[w.hostname] = (w, row)
        return row

    def _worker_row(self, w: WorkerInfo) -> Row:
        status = Text("online", "green") if w.online else Text("offline", "bold red")
        where = self._where(w.hostname)
        name = w.hostname
        if self.grouped:  # the host is on the host row: the name alone, indented under it
            name = "  " + (nodesplit(w.hostname)[0] or w.hostname)
        queues = ",".join(w.queues)
        cells: tuple[Cell, ...] = (
            name,
            status,
            Text(where, "magenta") if where == "remote" else where,
            str(w.active),
            str(w.processed),
            str(w.failed),
            str(w.pool_size or "-"),
            queues if len(queues) <= QUEUES_WIDTH else f"{len(w.queues)} queues",
        )
        sort = (
            w.hostname,
            status.plain,
            where,
            float(w.active),
            float(w.processed),
            float(w.failed),
            num(w.pool_size),
            queues,
        )
        return Row(w.hostname, cells, sort)

    def _host_row(self, host: str, members: Sequence[Row]) -> Row:
        """One host's row: its fold mark and name, and the totals of ``members``."""
        workers = [self._workers[r.key] for r in members]
        online = sum(1 for w in workers if w.online)
        style = "green" if online == len(workers) else "yellow" if online else "bold red"
        status = f"{online}/{len(workers)}" + ("" if self.narrow else " online")
        wheres = {self._where(w.hostname) for w in workers}
        where = wheres.pop() if len(wheres) == 1 else "mixed"
        active = sum(w.active for w in workers)
        processed = sum(w.processed for w in workers)
        failed = sum(w.failed for w in workers)
        pool = sum(w.pool_size or 0 for w in workers)
        mark = OPEN if self.is_expanded(host) else FOLDED
        cells = (
            Text(f"{mark} {host}", "bold"),
            Text(status, style),
            Text(where, "magenta") if where == "remote" else where,
            str(active),
            str(processed),
            str(failed),
            str(pool or "-"),
            "",
        )
        fraction = online / len(workers) if workers else 0.0
        sort = (host, fraction, where, active, processed, failed, float(pool), "")
        return Row(HOST_KEY + host, cells, sort)

    def _by_host(self, rows: Sequence[Row]) -> list[tuple[str, list[Row]]]:
        """``rows`` by host, hosts in name order, each host's rows in the order given."""
        hosts: dict[str, list[Row]] = {}
        for row in rows:
            hosts.setdefault(host_of(row.key), []).append(row)
        return sorted(hosts.items())

    def measured_rows(self) -> Sequence[Row]:
        """Workers and every host row: a host's name or totals may be the widest cell."""
        return [*self.rows_in, *self._heads] if self.grouped else self.rows_in

    # grouping, folding, filtering -----------------------------------------------------------
    def matches(self, key: str) -> bool:
        """True when the worker's node name (its host included) or a queue holds the filter."""
        needle = self.filter_text.lower()
        if not needle or needle in key.lower():
            return True
        worker = self._workers.get(key)
        return worker is not None and any(needle in q.lower() for q in worker.queues)

    def is_expanded(self, host: str) -> bool:
        """Whether ``host``'s workers show under its row."""
        choice = self.expanded.get(host)
        if choice is not None:
            return choice
        return self._open_default if self.watch_mode else host in self._local_hosts

    def visible_rows(self) -> list[Row]:
        """Workers that pass the filter, sorted, under their host's row when grouped."""
        rows = [r for r in self.rows_in if self.matches(r.key)]
        self._open_default = len(rows) + len({host_of(r.key) for r in rows}) <= EXPAND_UP_TO
        if self.sort_index is not None:
            i = self.sort_index
            rows.sort(key=lambda r: sort_key(r.sort[i]), reverse=self.sort_reverse)
        if not self.grouped:
            return rows
        groups = [(self._host_row(host, members), members) for host, members in self._by_host(rows)]
        if self.sort_index is not None:
            i = self.sort_index
            groups.sort(key=lambda g: sort_key(g[0].sort[i]), reverse=self.sort_reverse)
        shown: list[Row] = []
        for head, members in groups:
            shown.append(head)
            if self.is_expanded(host_of(members[0].key)):
                shown.extend(members)
        return shown

    def filter_note(self, rows: Sequence[Row]) -> str:
        """Nothing: the title says what the filter keeps."""
        return ""

    def _render_rows(self) -> None:
        super()._render_rows()
        title = "workers"
        if self.grouped:
            hosts = len({host_of(key) for key in self._workers})
            title += f" · {len(self._workers)} on {hosts} hosts"
        if self.filter_text:
            kept = sum(1 for key in self._workers if self.matches(key))
            title += f" · /{self.filter_text}: {kept} of {len(self._workers)}"
        if self.border_title != title:
            self.border_title = title

    def selected_worker(self) -> str | None:
        """The node name under the cursor (None on a host row or an empty table)."""
        key = self.selected_key()
        return None if key is None or key.startswith(HOST_KEY) else key

    def selected_host(self) -> str | None:
        """The host of the row under the cursor (a host row, or a worker's host)."""
        key = self.selected_key()
        if key is None:
            return None
        return key.removeprefix(HOST_KEY) if key.startswith(HOST_KEY) else host_of(key)

    def toggle_host(self) -> None:
        """Fold the selected host (or the selected worker's), or open it; cursor on its row."""
        host = self.selected_host()
        if host is None or not self.grouped:
            return
        self.expanded[host] = not self.is_expanded(host)
        self._render_rows()
        self.move_cursor(self.row_keys().index(HOST_KEY + host))

    def toggle_all(self) -> None:
        """Fold every host, or open every host when all shown are folded."""
        if not self.grouped:
            return
        host = self.selected_host()
        hosts = {host_of(key) for key in self._workers}
        shown = {host_of(key) for key in self._workers if self.matches(key)}
        opening = not any(self.is_expanded(h) for h in shown)
        self.expanded = dict.fromkeys(hosts, opening)
        self._render_rows()
        if host is not None and not opening and HOST_KEY + host in self.row_keys():
            self.move_cursor(self.row_keys().index(HOST_KEY + host))

    def action_select_cursor(self) -> None:
        """Enter on a host row folds or opens it; on a worker, as any table."""
        key = self.selected_key()
        if key is not None and key.startswith(HOST_KEY):
            self.toggle_host()
        else:
            super().action_select_cursor()
