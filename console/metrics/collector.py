"""The Prometheus collector: the console's latest refresh and task counts, read at scrape time."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from console.cluster.models import host_of
from console.metrics.taskevents import GENERIC, TaskEventCounts
from console.runtime import DashboardData
from console.supervision import ProcessSnapshot, ProcessState

PREFIX = "sentry_console_"
STATES = tuple(str(s) for s in ProcessState)
CRON_ROLES = ("leader", "standby", "no broker")


def _gauge(name: str, doc: str, labels: Iterable[str] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=list(labels))


class ConsoleCollector(Collector):
    """Builds every family from one snapshot when Prometheus scrapes; holds no series itself."""

    def __init__(
        self,
        latest: Callable[[], DashboardData | None],
        tasks: TaskEventCounts,
        *,
        drop_after: float,
        clock: Callable[[], float] = time.time,
        task_families: bool = True,
    ) -> None:
        self._latest = latest
        self.tasks = tasks
        self.task_families = task_families
        """Whether the task families come from here (False: rendered by exposition.py)."""
        self.drop_after = drop_after
        self._clock = clock

    def describe(self) -> Iterable[Metric]:
        """Nothing up front: registering must not read a snapshot."""
        return []

    def worker_label(self, node: str) -> str:
        """The ``hostname`` label of a worker gauge (``generic`` keeps the host part here)."""
        return node if self.tasks.hostname_mode == "node" else host_of(node)

    def collect(self) -> Iterator[Metric]:
        """Every family, from the latest refresh and the task counters."""
        data = self._latest()
        now = self._clock()
        live = {self.worker_label(w.hostname) for w in data.workers} if data else set()
        self.tasks.prune(live | {GENERIC}, self.drop_after, now)
        if self.task_families:
            yield from self.tasks.families()
        if data is None:
            return
        yield from self._workers(data)
        yield from self._queues(data)
        yield from self._programs(data, now)
        yield from self._broker(data)
        yield from self._console(data, now)

    def _workers(self, data: DashboardData) -> Iterator[Metric]:
        up: dict[str, int] = {}
        active: dict[str, int] = {}
        for w in data.workers:  # offline longer than CONSOLE_OFFLINE_DROP_AFTER: already gone
            label = self.worker_label(w.hostname)
            up[label] = max(up.get(label, 0), int(w.online))
            active[label] = active.get(label, 0) + (w.active if w.online else 0)
        up_family = _gauge(
            "celery_worker_up", "Indicates if a worker has recently sent a heartbeat.", ["hostname"]
        )
        active_family = _gauge(
            "celery_worker_tasks_active",
            "The number of tasks the worker is currently processing",
            ["hostname"],
        )
        for label in sorted(up):
            up_family.add_metric([label], up[label])
            active_family.add_metric([label], active[label])
        yield up_family
        yield active_family

    def _queues(self, data: DashboardData) -> Iterator[Metric]:
        length = _gauge(
            "celery_queue_length",
            "The number of message in broker queue (every priority sub-queue counted).",
            ["queue_name"],
        )
        consumers = _gauge(
            "celery_active_consumer_count",
            "The number of active consumer in broker queue.",
            ["queue_name"],
        )
        workers = _gauge(
            "celery_active_worker_count",
            "The number of active workers in broker queue.",
            ["queue_name"],
        )
        processes = _gauge(
            "celery_active_process_count",
            "The number of active processes in broker queue.",
            ["queue_name"],
        )
        unacked = _gauge(
            PREFIX + "queue_unacked", "Messages delivered and not yet acknowledged.", ["queue_name"]
        )
        overdue = _gauge(
            PREFIX + "queue_overdue",
            "Unacknowledged messages older than the visibility timeout (Redis).",
            ["queue_name"],
        )
        per_worker: dict[str, int] = {}
        per_process: dict[str, int] = {}
        for w in data.workers:
            if w.online:
                for q in w.queues:
                    per_worker[q] = per_worker.get(q, 0) + 1
                    per_process[q] = per_process.get(q, 0) + (w.pool_size or 0)
        capacity = {q.name: q for q in data.capacity.queues} if data.capacity else {}
        for row in data.queues:
            if row.ready is not None:
                length.add_metric([row.name], row.ready)
            if row.consumers is not None:
                consumers.add_metric([row.name], row.consumers)
            workers.add_metric([row.name], per_worker.get(row.name, 0))
            processes.add_metric([row.name], per_process.get(row.name, 0))
            extra = capacity.get(row.name)
            held = row.unacked if row.unacked is not None else (extra.unacked if extra else None)
            if held is not None:
                unacked.add_metric([row.name], held)
            if extra is not None and extra.overdue is not None:
                overdue.add_metric([row.name], extra.overdue)
        yield from (length, consumers, workers, processes, unacked, overdue)

    def _programs(self, data: DashboardData, now: float) -> Iterator[Metric]:
        labels = ["program", "group"]
        state = _gauge(
            PREFIX + "program_state",
            "1 for the program's state, 0 for the others.",
            [*labels, "state"],
        )
        restarts = CounterMetricFamily(
            PREFIX + "program_restarts",
            "Times the supervisor restarted the program.",
            labels=labels,
        )
        uptime = _gauge(
            PREFIX + "program_uptime_seconds", "Seconds since the program started.", labels
        )
        cpu = _gauge(
            PREFIX + "program_cpu_percent", "CPU use of the process (100 = one core).", labels
        )
        rss = _gauge(
            PREFIX + "program_resident_memory_bytes", "Resident memory of the process.", labels
        )
        code = _gauge(PREFIX + "program_last_exit_code", "Exit code of the last exit.", labels)
        sig = _gauge(
            PREFIX + "program_last_exit_signal", "Signal number that ended it last.", labels
        )
        exited = _gauge(
            PREFIX + "program_last_exit_timestamp_seconds", "When the program last exited.", labels
        )
        role = _gauge(
            PREFIX + "cron_role",
            "1 for a cron's coordination role (leader, standby, no broker), 0 for the others.",
            ["program", "role"],
        )
        last_slot = _gauge(
            PREFIX + "cron_last_slot_timestamp_seconds",
            "Due time of the last schedule slot a cron sent (alert when it falls behind).",
            ["program"],
        )
        for p in data.processes:
            values = [p.name, p.group or ""]
            for s in STATES:
                state.add_metric([*values, s], int(str(p.state) == s))
            restarts.add_metric(values, p.restarts)
            _maybe(uptime, values, p.uptime if p.pid is not None else None)
            _maybe(cpu, values, p.cpu_percent)
            _maybe(rss, values, p.rss_bytes)
            _exit(p, values, code, sig)
            _maybe(exited, values, p.exited_at)
            if p.role is not None:
                for r in CRON_ROLES:
                    role.add_metric([p.name, r], int(p.role == r))
            _maybe(last_slot, [p.name], p.last_slot)
        yield from (state, restarts, uptime, cpu, rss, code, sig, exited, role, last_slot)

    def _broker(self, data: DashboardData) -> Iterator[Metric]:
        up = _gauge(PREFIX + "broker_up", "1 while the broker answers the console's probe.")
        up.add_metric([], int(data.broker.state == "connected"))
        yield up
        rtt = _gauge(PREFIX + "broker_rtt_seconds", "Round trip of the last broker probe.")
        _maybe(rtt, [], data.broker.rtt_ms / 1000 if data.broker.rtt_ms is not None else None)
        yield rtt
        capacity = data.capacity
        memory = capacity.memory if capacity else None
        used = _gauge(PREFIX + "broker_memory_used_bytes", "Memory the broker uses.")
        limit = _gauge(PREFIX + "broker_memory_max_bytes", "The broker's memory limit.")
        evicted = CounterMetricFamily(
            PREFIX + "broker_evicted_keys", "Keys Redis evicted under its memory limit."
        )
        blocked = _gauge(
            PREFIX + "broker_publishers_blocked",
            "1 while RabbitMQ blocks publishers (memory or disk alarm).",
        )
        if memory is not None:
            _maybe(used, [], memory.used)
            _maybe(limit, [], memory.limit)
            if memory.evicted_keys is not None:
                evicted.add_metric([], memory.evicted_keys)
        if capacity is not None:
            blocked.add_metric([], int(bool(capacity.blocked)))
        yield from (used, limit, evicted, blocked)

    def _console(self, data: DashboardData, now: float) -> Iterator[Metric]:
        events = CounterMetricFamily(
            PREFIX + "events_received", "Celery events the console received."
        )
        events.add_metric([], data.events_received)
        errors = CounterMetricFamily(
            PREFIX + "errors",
            "Failures the console survived, by kind (undecodable event: events dropped).",
            labels=["kind"],
        )
        for kind, n in sorted(data.errors.items()):
            errors.add_metric([kind], n)
        overflow = CounterMetricFamily(
            PREFIX + "task_series_overflow",
            "Task events counted under name=other because the label sets were all taken.",
        )
        overflow.add_metric([], self.tasks.overflowed)
        age = _gauge(PREFIX + "refresh_age_seconds", "Age of the refresh these figures come from.")
        age.add_metric([], max(0.0, now - data.taken_at))
        listening = _gauge(
            PREFIX + "events_listening", "1 while the event receiver is connected and listening."
        )
        listening.add_metric([], int(data.cluster_state == "listening"))
        yield from (events, errors, overflow, age, listening)


def _maybe(family: GaugeMetricFamily, labels: list[str], value: float | None) -> None:
    if value is not None:
        family.add_metric(labels, value)


def _exit(
    p: ProcessSnapshot, labels: list[str], code: GaugeMetricFamily, sig: GaugeMetricFamily
) -> None:
    if p.exitstatus is None:
        return
    if p.exitstatus >= 0:
        code.add_metric(labels, p.exitstatus)
    else:
        sig.add_metric(labels, -p.exitstatus)
