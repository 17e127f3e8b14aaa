"""The demo mode's data: a believable cluster, frozen in time (for screenshots and UI tests)."""

from __future__ import annotations

from dataclasses import replace

from console.broker.capacity import (
    BrokerCapacity,
    BrokerMemory,
    CapacityWarning,
    QueueCapacity,
    memory_warnings,
)
from console.broker.models import BrokerHealth
from console.cluster.models import TaskInfo, WorkerInfo
from console.queuestats import QueueRow
from console.snapshot import DashboardData
from console.supervision import ProcessSnapshot, ProcessState

NOW = 1_790_000_000.0
URL = "redis://:***@10.0.4.12:6379/0"
SCENARIOS = ("main", "fatal", "broker-down", "memory-warning", "watch")
WATCH_HOSTS = ("alpha", "bravo", "charlie")


def _process(
    name: str, state: ProcessState, pid: int | None, uptime: float | None, **kw: object
) -> ProcessSnapshot:
    values: dict[str, object] = {
        "name": name,
        "group": name.split("-")[0],
        "state": state,
        "pid": pid,
        "pgid": pid,
        "started_at": NOW - uptime if uptime else None,
        "uptime": uptime,
        "restarts": 0,
        "exitstatus": None,
        "backoff_remaining": None,
        "cpu_percent": 3.0,
        "rss_bytes": 96 * 1024 * 1024,
        "description": f"pid {pid}" if pid else "",
    }
    values.update(kw)
    return ProcessSnapshot(**values)  # type: ignore[arg-type]


def _queue(name: str, ready: int, history: tuple[int, ...], rates: tuple[float, float]) -> QueueRow:
    net = rates[1] - rates[0]
    return QueueRow(
        name=name,
        ready=ready,
        consumers=None,
        unacked=None,
        exists=True,
        in_rate=rates[0],
        out_rate=rates[1],
        history=history,
        drain_seconds=(ready / net) if net > 0 and ready else (0.0 if not ready else None),
    )


def _worker(
    host: str,
    active: int,
    processed: int,
    failed: int,
    online: bool = True,
    pool: int = 2,
    queues: tuple[str, ...] = (),
) -> WorkerInfo:
    return WorkerInfo(
        hostname=host,
        online=online,
        last_heartbeat=NOW - (1 if online else 95),
        pid=None,
        active=active,
        processed=processed,
        failed=failed,
        pool_size=pool,
        queues=queues,
        loadavg=None,
        sw_ident="py-celery",
    )


DEMO_TRACEBACK = """Traceback (most recent call last):
  File "/srv/app/workers/tasks.py", line 88, in process_event
    store.save(event)
  File "/srv/app/workers/store.py", line 41, in save
    raise StoreBusy("event store locked, retrying")
workers.store.StoreBusy: event store locked, retrying"""


def _task(uuid: str, name: str, worker: str, runtime: float, args: str, **kw: object) -> TaskInfo:
    info = TaskInfo(
        uuid=uuid,
        name=name,
        state="STARTED",
        worker=worker,
        args=args,
        kwargs="{}",
        received=NOW - runtime - 0.2,
        started=NOW - runtime,
        finished=None,
        runtime=None,
        result=None,
        exception=None,
        traceback=None,
        retries=0,
    )
    return replace(info, **kw)  # type: ignore[arg-type]


def demo_data(scenario: str = "main") -> DashboardData:
    """The frozen cluster for one screenshot scenario."""
    if scenario == "watch":
        return watch_data()
    processes = [
        _process("worker-1", ProcessState.RUNNING, 41027, 8_130.0, cpu_percent=38.0),
        _process("worker-2", ProcessState.RUNNING, 41544, 312.0, restarts=1, cpu_percent=35.0),
        _process("cron", ProcessState.RUNNING, 41031, 8_129.0, cpu_percent=0.0, rss_bytes=61 << 20),
    ]
    if scenario == "fatal":
        processes.append(
            _process(
                "ingest-1",
                ProcessState.FATAL,
                None,
                None,
                exitstatus=1,
                restarts=3,
                cpu_percent=None,
                rss_bytes=None,
                description="Exited too quickly (process log may have details)",
            )
        )
    queues = [
        _queue("default", 0, (0, 0, 1, 0, 0, 2, 0, 0, 0, 1, 0, 0), (0.4, 0.4)),
        _queue(
            "events.process_event",
            1_204,
            (80, 260, 540, 810, 1020, 1180, 1240, 1204),
            (310.0, 402.0),
        ),
        _queue("events.save_event", 86, (10, 30, 55, 70, 90, 84, 88, 86), (402.0, 398.0)),
        _queue("cleanup", 0, (0, 1, 0, 0, 0, 1, 0, 0), (0.1, 0.1)),
    ]
    workers = [
        _worker("worker-1@ops-1", 2, 182_340, 12),
        _worker("worker-2@ops-1", 2, 6_512, 0),
        _worker("batch@ops-2", 1, 90_115, 3),
    ]
    tasks = [
        _task(
            "3f2a9c1e7b5d4e10",
            "workers.process_event",
            "worker-1@ops-1",
            0.4,
            "({'event_id': 'a81c…'},)",
        ),
        _task(
            "9b1d77e0c2aa4f31",
            "workers.save_event",
            "worker-1@ops-1",
            0.1,
            "({'event_id': '5e02…'},)",
        ),
        _task(
            "c4e8015f6d3b4a92",
            "workers.process_event",
            "worker-2@ops-1",
            1.2,
            "({'event_id': '77fa…'},)",
            kwargs="{'project_id': 42, 'cache_key': 'e:77fa…'}",
            retries=1,
            exception="StoreBusy('event store locked, retrying')",
            traceback=DEMO_TRACEBACK,
        ),
        _task("e01b5a3c9f8d4c27", "workers.cleanup_events", "batch@ops-2", 14.0, "()"),
    ]
    health = BrokerHealth(
        state="connected",
        reason=None,
        rtt_ms=0.4,
        server_version="7.0.15",
        reconnects=0,
        last_ok=NOW,
    )
    if scenario == "broker-down":
        health = BrokerHealth(
            state="down",
            reason="connection refused",
            rtt_ms=None,
            server_version=None,
            reconnects=2,
            last_ok=NOW - 14,
        )
        queues = []
        workers = [_worker(w.hostname, 0, w.processed, w.failed, online=False) for w in workers]
        tasks = []
    capacity = demo_capacity() if scenario == "memory-warning" else None
    failures = (
        _failed("9a0c11d2e3f44b55", "workers.save_event", "worker-2@ops-1", 42.0, "StoreBusy()"),
        _failed(
            "1b2c3d4e5f60718a", "workers.process_event", "batch@ops-2", 610.0, "KeyError('id')"
        ),
    )
    return DashboardData(
        capacity=capacity,
        broker_url=URL,
        broker=health,
        processes=tuple(processes),
        queues=tuple(queues),
        workers=tuple(workers),
        remote_workers=frozenset({"batch@ops-2"}),
        active_tasks=tuple(tasks),
        cluster_state="listening",
        events_received=845_310,
        taken_at=NOW,
        failures=failures,
    )


WATCH_QUEUES = (("events.process_event", "events.save_event"), ("default", "cleanup"))


def watch_data(hosts: tuple[str, ...] = WATCH_HOSTS, per_host: int = 2) -> DashboardData:
    """A cluster seen from watch mode: ``per_host`` workers on each host, none supervised.

    The last worker of the last host is offline; workers alternate between two sets of queues.
    """
    workers = []
    for h, host in enumerate(hosts):
        for n in range(1, per_host + 1):
            last = h == len(hosts) - 1 and n == per_host
            workers.append(
                _worker(
                    f"worker-{n}@{host}",
                    active=0 if last else (h + n) % 3,
                    processed=40_000 + 7_919 * (h * per_host + n) % 90_000,
                    failed=(h + 2 * n) % 4,
                    online=not last,
                    pool=4 if n % 2 else 8,
                    queues=WATCH_QUEUES[(n - 1) % 2],
                )
            )
    main = demo_data("main")
    first = workers[0].hostname
    tasks = tuple(replace(t, worker=first if i < 2 else workers[2].hostname)
                  for i, t in enumerate(main.active_tasks))  # fmt: skip
    return replace(
        main,
        processes=(),
        workers=tuple(workers),
        remote_workers=frozenset(w.hostname for w in workers),
        active_tasks=tasks,
    )


def demo_capacity() -> BrokerCapacity:
    """A Redis at 92% of a 64 MB maxmemory under allkeys-lru, filling, with overdue work."""
    memory = BrokerMemory(
        used=61_800_000,
        peak=62_400_000,
        limit=64 * 1024 * 1024,
        limit_source="maxmemory",
        policy="allkeys-lru",
        growth_per_second=21_000.0,
        seconds_to_full=252.0,
        evicted_keys=0,
    )
    queues = (
        QueueCapacity("default", bytes=1_900, unacked=0, overdue=0),
        QueueCapacity("events.process_event", bytes=52_300_000, unacked=4, overdue=0),
        QueueCapacity("events.save_event", bytes=3_700_000, unacked=6, overdue=2),
        QueueCapacity("cleanup", bytes=0, unacked=1, overdue=0),
    )
    overdue = CapacityWarning(
        "unacked-overdue",
        "2 unacked tasks are older than the visibility timeout (3600s): they will run again; "
        "look for dead or stuck workers",
    )
    return BrokerCapacity(
        memory=memory,
        queues=queues,
        unacked=11,
        overdue=2,
        visibility_timeout=3600.0,
        warnings=(*memory_warnings(memory), overdue),
    )


def _failed(uuid: str, name: str, worker: str, ago: float, exception: str) -> TaskInfo:
    """A task that failed ``ago`` seconds before the demo's instant."""
    task = _task(uuid, name, worker, 0.3, "()", state="FAILURE", exception=exception)
    return replace(task, received=NOW - ago - 0.5, started=NOW - ago - 0.3, finished=NOW - ago)


DEMO_LOG = [
    "[2026-11-27 03:12:44,101: WARNING/MainProcess] consumer: Connection to broker lost. "
    "Trying to re-establish the connection...",
    "[2026-11-27 03:12:46,377: INFO/MainProcess] Connected to redis://:**@10.0.4.12:6379/0",
    "[2026-11-27 03:12:46,402: INFO/MainProcess] worker-1@ops-1 ready.",
    "[2026-11-27 03:13:02,950: WARNING/ForkPoolWorker-2] dropping malformed event: "
    "missing event_id",
]
