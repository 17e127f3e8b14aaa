"""The workers pane after scaling and stopping: the console's own workers are never "remote"."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from console.runtime import ConsoleRuntime, DashboardData, worker_node_name
from console.settings import Settings, WorkerGroup
from console.supervision.supervisor import Supervisor
from tests.supervision_support.fakes import FakeClock, drive, make_supervisor


@pytest.fixture
def runtime(
    redis_url: str, tmp_path: Path
) -> Iterator[tuple[ConsoleRuntime, Supervisor, FakeClock]]:
    """A runtime on a real (claimed, empty) Redis db, with fake worker processes."""
    settings = Settings(
        broker=None,
        broker_source="test",
        state_dir=tmp_path,
        worker_groups=(WorkerGroup(processes=2),),
        cron=False,
    ).with_broker(redis_url, "test")
    sup, clock, _spawner = make_supervisor()
    rt = ConsoleRuntime(settings, Celery("own", broker=redis_url, set_as_current=False), sup)
    try:
        yield rt, sup, clock
    finally:
        sup.shutdown(timeout=1)
        rt.health.close()
        if rt._depth is not None:
            rt._depth.close()


def heartbeat(rt: ConsoleRuntime, n: int, pid: int, **more: Any) -> None:
    """A heartbeat from worker number ``n`` of the first group, as Celery would send it."""
    node = worker_node_name(rt.settings.worker_groups[0], n)
    rt.monitor.state.apply({"type": "worker-heartbeat", "hostname": node, "pid": pid, **more})


def nodes(data: DashboardData) -> dict[str, bool]:
    return {w.hostname.partition("@")[0]: w.online for w in data.workers}


def scale_to(rt: ConsoleRuntime, sup: Supervisor, clock: FakeClock, count: int) -> None:
    rt.scale(count - rt.group_size("worker"))
    drive(sup, clock, lambda: len(sup.snapshot()) == count and all(
        p.state == "RUNNING" for p in sup.snapshot()))  # fmt: skip


def test_scaled_away_workers_are_not_remote_and_leave_the_counts(
    runtime: tuple[ConsoleRuntime, Supervisor, FakeClock],
) -> None:
    rt, sup, clock = runtime
    scale_to(rt, sup, clock, 5)
    for p in sup.snapshot():
        heartbeat(rt, int(p.name.rsplit("-", 1)[1]), p.pid or 0)
    data = rt.poll()
    assert sum(w.online for w in data.workers) == 5 and not data.remote_workers
    scale_to(rt, sup, clock, 2)
    heartbeat(rt, 4, 999)  # a heartbeat still in flight from a worker that has gone
    rt.monitor.state.apply({"type": "worker-offline", "hostname": worker_node_name(
        rt.settings.worker_groups[0], 3)})  # fmt: skip
    data = rt.poll()
    assert not data.remote_workers, data.remote_workers
    assert len(data.workers) == 2 and all(w.online for w in data.workers), nodes(data)


def test_a_stopped_worker_is_offline_as_soon_as_its_process_exits(
    runtime: tuple[ConsoleRuntime, Supervisor, FakeClock],
) -> None:
    rt, sup, clock = runtime
    scale_to(rt, sup, clock, 2)
    for p in sup.snapshot():
        heartbeat(rt, int(p.name.rsplit("-", 1)[1]), p.pid or 0)
    assert rt.poll().remote_workers == frozenset()
    rt.stop("worker-1")
    drive(sup, clock, lambda: sup.snapshot()[0].state == "STOPPED")
    data = rt.poll()  # the worker's last heartbeat is still fresh: Celery would say online
    shown = {w.hostname: w for w in data.workers}
    one = worker_node_name(rt.settings.worker_groups[0], 1)
    assert not shown[one].online and one not in data.remote_workers
    assert sum(w.online for w in data.workers) == 1
