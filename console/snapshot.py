"""What a screen or a script is shown: one dashboard snapshot, and the JSON of its processes.

Plain data only. The supervisor server builds these from its engine and sends them; its
clients (an attached TUI, ``ctl``) read them without loading celery, kombu or a broker client.
Keep it that way: nothing imported here may import the engine (tests/unit/test_layering.py).
"""

from __future__ import annotations

import signal
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from console.broker.capacity import BrokerCapacity
from console.broker.models import BrokerHealth
from console.cluster.models import TaskInfo, WorkerInfo
from console.jobs import JobView
from console.queuestats import QueueRow
from console.supervision.model import ProcessSnapshot, ProcessState, describe_running


@dataclass(frozen=True)
class DashboardData:
    """Everything one screen refresh shows, gathered off the UI thread."""

    broker_url: str
    broker: BrokerHealth
    processes: tuple[ProcessSnapshot, ...] = ()
    queues: tuple[QueueRow, ...] = ()
    workers: tuple[WorkerInfo, ...] = ()
    remote_workers: frozenset[str] = frozenset()
    active_tasks: tuple[TaskInfo, ...] = ()
    cluster_state: str = "starting"
    events_received: int = 0
    last_reload: str | None = None
    taken_at: float = field(default_factory=time.time)
    errors: dict[str, int] = field(default_factory=dict)
    """Failures the cluster monitor survived, by kind."""
    capacity: BrokerCapacity | None = None
    """Broker memory, warnings and per-queue load (None: not measured this poll)."""
    failures: tuple[TaskInfo, ...] = ()
    """The last failed tasks, newest first, without their tracebacks."""
    events: str = "all"
    """Events subscribed to: ``all``, or ``workers`` (no task events: no active tasks shown)."""
    jobs: tuple[JobView, ...] = ()
    """Actions queued or running, oldest first, then the last few that finished."""


def aged(data: DashboardData, now: float) -> DashboardData:
    """``data`` as of ``now``: every live program's uptime counted from its start."""
    processes = tuple(
        replace(p, uptime=up, description=_description(p, up))
        if p.uptime is not None and p.started_at is not None and (up := now - p.started_at) >= 0
        else p
        for p in data.processes
    )
    return replace(data, processes=processes, taken_at=now)


def _description(p: ProcessSnapshot, uptime: float) -> str:
    return describe_running(p.pid, uptime) if p.state is ProcessState.RUNNING else p.description


def process_json(p: ProcessSnapshot) -> dict[str, Any]:
    """A process snapshot in the documented ``status --json`` shape."""
    data = asdict(p)
    data["state"] = str(p.state)
    shown = {
        k: data.get(k)
        for k in (
            *("name", "group", "state", "pid", "uptime", "restarts", "cpu_percent", "rss_bytes"),
            "role",
        )
    }
    shown["last_exit"] = exit_json(p.exitstatus, p.exited_at)
    shown["reason"] = p.description if p.state is ProcessState.FATAL else None
    return shown


def exit_json(status: int | None, at: float | None) -> dict[str, Any] | None:
    """A last exit as ``{"code", "signal", "at"}``: a code, or a signal's name, and when."""
    if status is None and at is None:
        return None
    code = status if status is not None and status >= 0 else None
    signame = None
    if status is not None and status < 0:
        try:
            signame = signal.Signals(-status).name
        except ValueError:
            signame = f"signal {-status}"
    return {"code": code, "signal": signame, "at": at}
