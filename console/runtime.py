"""The console's engine without a screen: supervisor, cluster monitor and broker probes together.

The TUI drives one :class:`ConsoleRuntime`; every blocking call here is made off the UI thread.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterable, Sequence

from celery import Celery
from celery.utils.nodenames import nodesplit

from console.appref import app_queue_names, transport_options
from console.broker.capacity_monitor import CapacityMonitor
from console.broker.depth import BrokerUnavailable, QueueDepthProbe, make_depth_probe
from console.broker.errors import SILENT_REASONS
from console.broker.health import BrokerHealthProbe
from console.broker.redis_capacity import app_routes
from console.cluster import ClusterMonitor, ClusterSnapshot, RemoteControl, TaskInfo, WorkerInfo
from console.consolelog import audited, log_path, setup_console_log
from console.cron.role import with_cron_role
from console.failures import RecentFailures
from console.handover import WorkerHandover
from console.jobs import JobQueue, JobView
from console.ownworkers import OwnWorkers
from console.programactions import ProgramActions
from console.programs import (
    CRON,
    alternate_node_name,
    celery_node_name,
    cron_program,
    worker_program,
)
from console.queuestats import QueueRow, QueueTracker
from console.reload import CodeReloader
from console.settings import Settings, WorkerGroup
from console.snapshot import DashboardData, exit_json, process_json
from console.statusfile import STATUS_FILE, StatusFileWriter, read_status
from console.supervision import ProcessSnapshot, Supervisor
from console.workeractions import WorkerActions

# Moved to console.snapshot and console.statusfile; importable from here as before.
__all__ = [
    "STATUS_FILE",
    "ConsoleRuntime",
    "DashboardData",
    "exit_json",
    "local_node_names",
    "local_nodes",
    "process_json",
    "read_status",
    "remote_worker_names",
    "worker_node_name",
]
#: Bounds of one poll's broker calls: a dead or silent broker costs at most their sum (~3.2 s).
HEALTH_TIMEOUT = 1.0
DEPTH_TIMEOUT = 1.2
CAPACITY_TIMEOUT = 1.0


def worker_node_name(group: WorkerGroup, n: int) -> str:
    """The node name worker number ``n`` of ``group`` answers to; every caller uses this one."""
    return celery_node_name(group.node_name(n))


def local_nodes(settings: Settings, processes: Iterable[ProcessSnapshot]) -> dict[str, bool]:
    """Celery node names of the worker programs this console supervises now: alive or not."""
    groups = {g.name: g for g in settings.worker_groups}
    names: dict[str, bool] = {}
    for process in processes:
        group = groups.get(process.group or "")
        number = process.name.rpartition("-")[2]
        if group is not None and number.isdigit():
            node = group.node_name(int(number))
            for name in (node, alternate_node_name(node)):  # a worker slot has two names
                names[celery_node_name(name)] = process.pid is not None
    return names


def local_node_names(settings: Settings, processes: Iterable[ProcessSnapshot]) -> set[str]:
    """Celery node names of the worker programs this console supervises right now."""
    return set(local_nodes(settings, processes))


def remote_worker_names(
    settings: Settings, processes: Sequence[ProcessSnapshot], workers: Iterable[WorkerInfo]
) -> frozenset[str]:
    """Workers in the cluster that this console does not supervise.

    A worker is local when its node name is one of the supervised programs' names, or when it
    reports the pid of a supervised process and runs on this host (a custom ``-n`` still matches).
    """
    names = local_node_names(settings, processes)
    pids = {p.pid for p in processes if p.pid is not None}
    host = socket.gethostname()
    return frozenset(
        w.hostname
        for w in workers
        if w.hostname not in names
        and not (w.pid in pids and nodesplit(w.hostname)[1] in (host, None))
    )


class ConsoleRuntime(ProgramActions, WorkerActions):
    """Owns the supervised programs and the probes; hands out :class:`DashboardData`."""

    def __init__(self, settings: Settings, app: Celery, supervisor: Supervisor | None = None):
        assert settings.broker is not None, "resolve the broker (embedded or configured) first"
        self.settings = settings
        self.app = app
        self.supervisor = supervisor or Supervisor(sample_interval=5.0)
        self.monitor = ClusterMonitor(
            app, drop_offline_after=settings.offline_drop_after, events=settings.events
        )
        self.control = RemoteControl(app)
        self.health = BrokerHealthProbe(settings.broker, timeout=HEALTH_TIMEOUT)
        self.wakeup = threading.Event()
        """Set when the screen should poll at once (a RabbitMQ alarm came or went)."""
        self.capacity = CapacityMonitor(
            settings.broker,
            transport_options(app),
            app_routes(app),
            timeout=CAPACITY_TIMEOUT,
            api=settings.rabbitmq_api,
            on_change=self.wakeup.set,
        )
        self._depth: QueueDepthProbe | None = None
        self._tracker = QueueTracker()
        self._counts = {g.name: g.processes for g in settings.worker_groups}
        self._groups = {g.name: g for g in settings.worker_groups}
        self._poll_lock = threading.Lock()
        self._own = OwnWorkers()  # used under _poll_lock
        self._failures = RecentFailures()  # used under _poll_lock
        self._scale_lock = threading.Lock()
        self.log_file = log_path(settings.state_dir)
        self._status_file = StatusFileWriter(settings.state_dir)
        self._reloader: CodeReloader | None = None
        self.last_reload: str | None = None
        """What the last reload did, e.g. ``reloaded: tasks.py changed`` (None before one)."""
        self.handover = WorkerHandover(settings, self.supervisor, self.control)
        self.jobs = JobQueue(on_change=self.wakeup.set)
        """Every action, from any client, the reloader or a key, runs here one at a time."""
        self.latest: DashboardData | None = None
        """The last refresh :meth:`poll` made, for readers on other threads (metrics)."""

    # lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        """Start every configured program and the background monitors."""
        if self.settings.reload:  # before any program starts: a path it cannot find is fatal
            self._reloader = CodeReloader(self.settings, self.reload_code)
        self.log_file = setup_console_log(self.settings.state_dir)
        for group in self.settings.worker_groups:
            for n in range(1, group.processes + 1):
                self.supervisor.add_program(worker_program(self.settings, group, n), number=n)
        if self.settings.cron:
            self.supervisor.add_program(cron_program(self.settings))
        self.supervisor.run_in_background()
        self.monitor.start()
        if self._reloader is not None:
            self._reloader.start()
        self.capacity.start()

    @audited("stop everything")
    def shutdown(self) -> None:
        """Warm-stop every child, then stop the monitors; safe to call twice."""
        self.jobs.close()
        if self._reloader is not None:
            self._reloader.stop()
        self.supervisor.shutdown()
        self.monitor.stop()
        self.control.close_soon()
        with self._poll_lock:  # a poll in flight finishes with its probes first
            self.health.close()
            self.capacity.close()
            if self._depth is not None:
                self._depth.close()
        self._status_file.remove()

    # data --------------------------------------------------------------------------------
    def queue_names(self, cluster: ClusterSnapshot) -> list[str]:
        """The app's queues, the default queue and every queue a live worker consumes."""
        names = app_queue_names(self.app)
        names += sorted(q for q in cluster.consumed_queues if q not in names)
        return names

    def poll(self) -> DashboardData:
        """Gather one refresh worth of data (blocking; never call on the UI thread)."""
        with self._poll_lock:
            state_dir = self.settings.state_dir
            processes = tuple(
                with_cron_role(p, state_dir, CRON) for p in self.supervisor.snapshot()
            )
            cluster = self.monitor.snapshot()
            was = self.health.last.state
            health = self.health.check()
            rows: tuple[QueueRow, ...] = ()
            capacity = None
            if health.state == "connected":
                if was == "down":
                    self.monitor.broker_back()
                names = self.queue_names(cluster)
                try:
                    rows = self._poll_queues(cluster, names)
                except BrokerUnavailable as exc:
                    if exc.reason in SILENT_REASONS:
                        # Silent since the health check: say so in this refresh, not after one
                        # more probe's timeout (and the capacity probe's) in the next.
                        health = self.health.lost(exc.reason)
                if health.state == "connected":
                    capacity = self.capacity.poll(names)
            nodes = local_nodes(self.settings, processes)
            workers = self._own.view(nodes, cluster.workers)
            data = DashboardData(
                broker_url=self.settings.redacted_broker_url,
                broker=health,
                processes=processes,
                queues=rows,
                workers=tuple(workers),
                remote_workers=remote_worker_names(self.settings, processes, workers),
                active_tasks=tuple(cluster.active_tasks),
                cluster_state=cluster.receiver_state,
                events_received=cluster.events_received,
                events=cluster.events,
                last_reload=self.last_reload,
                errors=cluster.errors,
                capacity=capacity,
                failures=self._failures.update(cluster.recent_tasks),
                jobs=self.job_views(),
            )
            self._write_status(data)
            self.latest = data
            return data

    def job_views(self, finished: int = 3) -> tuple[JobView, ...]:
        """What a screen shows of the jobs: those queued or running, and the last finished."""
        active = self.jobs.active()
        done = [j for j in self.jobs.recent(finished + len(active)) if j.state.finished]
        return (*active, *done[:finished])

    def _poll_queues(self, cluster: ClusterSnapshot, names: list[str]) -> tuple[QueueRow, ...]:
        assert self.settings.broker is not None
        try:
            if self._depth is None:
                self._depth = make_depth_probe(
                    self.settings.broker, transport_options(self.app), timeout=DEPTH_TIMEOUT
                )
            depths = self._depth.poll(names)
        except BrokerUnavailable:
            if self._depth is not None:
                self._depth.close()
            self._depth = None
            raise
        return tuple(self._tracker.update(depths, time.time(), cluster.enqueued, cluster.dequeued))

    def _write_status(self, data: DashboardData) -> None:
        """Leave the process table where ``sentry-console status`` can read it."""
        self._status_file.write(data, self.log_file)

    def output(self, name: str, last: int | None = None, stamps: bool = False) -> list[str]:
        """The tail of a program's merged output (``stamps``: each line's arrival time first)."""
        return self.supervisor.output(name, last, stamps)

    # operator actions on tasks, queues and pools (blocking; run them off the UI thread) ----
    def task(self, uuid: str) -> TaskInfo | None:
        """The detail of one task as the cluster monitor last saw it."""
        return self.monitor.task(uuid)

    @audited("stop everything now")
    def shutdown_now(self) -> None:
        """Stop every child without waiting for tasks in flight (they return to their queue);
        during a warm stop already under way, its programs get their hard stop at once."""
        self.jobs.close()
        self.supervisor.shutdown(timeout=1.0)
        self.shutdown()
