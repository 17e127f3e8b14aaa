"""The one-line status bar: broker health and cluster totals, fitted to the terminal's width."""

from __future__ import annotations

import re
from dataclasses import dataclass

from rich.text import Text
from textual.widgets import Static

from console.cluster.models import host_of
from console.snapshot import DashboardData
from console.supervision import ProcessState
from console.ui import format as fmt
from console.ui.capacity import memory_rank, memory_text

_FAILING = (ProcessState.BACKOFF, ProcessState.FATAL)
_USERINFO = re.compile(r"^(?P<scheme>[a-z+]+)://[^/@]*@")


def short_url(url: str, source: str) -> str:
    """The broker URL without user and password (already redacted), compact for the status bar."""
    if source == "embedded" or url == "embedded":
        return "embedded redis"
    return _USERINFO.sub(r"\g<scheme>://", url)


@dataclass(frozen=True)
class Part:
    """A piece of the status bar; lower ``rank`` pieces are dropped first when space runs out."""

    text: Text
    rank: int


def status_parts(
    data: DashboardData, source: str, attachment: str | None = None, watch: bool = False
) -> list[Part]:
    """Every piece the status bar could show, in display order (``watch``: watch mode)."""
    health = data.broker
    style = {"connected": "bold green", "connecting": "bold yellow"}.get(health.state, "bold red")
    parts = [Part(Text(" watch ", "bold reverse cyan"), 9)] if watch else []
    parts += [
        Part(Text.assemble(("● ", style), (health.state, style)), 9),
        Part(Text(short_url(data.broker_url, source), "bold"), 9 if watch else 8),  # the cluster
    ]
    if health.state == "connected" and health.rtt_ms is not None:
        parts.append(Part(Text(fmt.millis(health.rtt_ms), "dim"), 2))
    if health.reason and health.state != "connected":
        parts.append(Part(Text(f"({health.reason})", "red"), 7))
    if health.server_version:
        parts.append(Part(Text(f"v{health.server_version}", "dim"), 1))
    if health.reconnects:
        parts.append(Part(Text(f"reconnects {health.reconnects}", "dim"), 1))
    capacity = data.capacity
    if capacity is not None and capacity.blocked:
        parts.append(Part(Text("PUBLISHERS BLOCKED", "bold white on red"), 9))
    if capacity is not None and capacity.memory is not None and capacity.memory.used is not None:
        parts.append(Part(memory_text(capacity.memory), memory_rank(capacity.memory)))
    running = sum(1 for p in data.processes if p.state == ProcessState.RUNNING)
    failed = sum(1 for p in data.processes if p.state == ProcessState.FATAL)
    if not watch:
        procs = f"{running}/{len(data.processes)}"
        parts.append(Part(Text.assemble(("│ procs ", "dim"), procs), 6))
    if failed:
        parts.append(Part(Text(f"{failed} FATAL", "bold red reverse"), 9))
    online = sum(1 for w in data.workers if w.online)
    workers = f"{online}/{len(data.workers)}"
    if watch:  # no programs: the workers lead, then on how many hosts they run
        parts.append(Part(Text.assemble(("│ workers ", "dim"), workers), 6))
        hosts = len({host_of(w.hostname) for w in data.workers})
        parts.append(Part(Text.assemble(("hosts ", "dim"), str(hosts)), 3))
    else:
        parts.append(Part(Text.assemble(("workers ", "dim"), workers), 5))
    if data.events == "workers":  # subscribed to worker events only: no task list to count
        parts.append(Part(Text("task events off", "dim"), 4))
    else:
        parts.append(Part(Text.assemble(("tasks ", "dim"), str(len(data.active_tasks))), 4))
    queued = sum(q.ready or 0 for q in data.queues)
    parts.append(Part(Text.assemble(("queued ", "dim"), str(queued)), 5))
    parts.append(Part(Text.assemble(("events ", "dim"), str(data.events_received)), 0))
    if data.last_reload:
        failing = [p.name for p in data.processes if p.state in _FAILING]
        text = data.last_reload + (f", {failing[0]} failing" if failing else "")
        parts.append(Part(Text(text, "bold red" if failing else "cyan"), 9 if failing else 7))
    if data.errors:  # survived failures; the console's log has the details
        parts.append(Part(Text(f"errors {sum(data.errors.values())}", "bold red"), 7))
    job = job_part(data)
    if job is not None:
        parts.append(job)
    if attachment:
        parts.append(Part(Text.assemble(("│ ", "dim"), (attachment, "cyan")), 3))
    return parts


JOB_SHOWN_FOR = 15.0
"""Seconds a finished job's result stays in the status bar."""
_JOB_STYLE = {"done": "green", "refused": "yellow", "failed": "bold red"}


def job_part(data: DashboardData) -> Part | None:
    """The running job with its progress (and how many wait behind it), or the last result."""
    active = [j for j in data.jobs if not j.state.finished]
    if active:
        job = active[0]
        text = f"job {job.id} {job.action}" + (f": {job.progress}" if job.progress else "…")
        more = f" (+{len(active) - 1} queued)" if len(active) > 1 else ""
        return Part(Text.assemble(("│ ", "dim"), (text + more, "bold cyan")), 8)
    done = [j for j in data.jobs if j.ended_at and data.taken_at - j.ended_at < JOB_SHOWN_FOR]
    if not done:
        return None
    job = max(done, key=lambda j: j.id)
    text = f"job {job.id} {job.state}: {job.message or job.action}"
    return Part(Text.assemble(("│ ", "dim"), (text, _JOB_STYLE.get(str(job.state), ""))), 6)


def fit_status(parts: list[Part], width: int) -> Text:
    """Join the parts with two spaces, dropping the lowest ranked until they fit ``width``."""
    kept = list(parts)
    while kept:
        line = Text("  ").join(p.text for p in kept)
        if line.cell_len <= width or len(kept) == 1:
            line.truncate(width, overflow="ellipsis")
            return line
        kept.remove(min(kept, key=lambda p: p.rank))
    return Text()


class StatusBar(Static):
    """Broker state and cluster totals on one line; re-fitted whenever the width changes."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(Text("starting…"), id=id)
        self._parts: list[Part] | None = None
        self._message: Text | None = None
        self._last: Text | None = None

    def show(
        self, data: DashboardData, source: str, attachment: str | None = None, watch: bool = False
    ) -> None:
        """Show a fresh poll result."""
        self._parts = status_parts(data, source, attachment, watch)
        self._refit()

    def say(self, message: Text) -> None:
        """Replace the bar with a message (e.g. while quitting)."""
        self._message = message
        self.update(message)

    def on_resize(self) -> None:
        """Fit the bar again to its new width."""
        self._refit()

    def _refit(self) -> None:
        if self._message is not None or self._parts is None:
            return
        width = max(self.content_region.width, 20)
        line = fit_status(self._parts, width)
        if line != self._last:
            self._last = line
            self.update(line, layout=False)  # one line of fixed height: no layout pass needed
