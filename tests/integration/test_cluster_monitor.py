"""ClusterMonitor and RemoteControl against real workers on real Redis and RabbitMQ."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from console.cluster import ClusterMonitor, ClusterSnapshot, RemoteControl, TaskInfo, WorkerInfo
from tests.cluster_support.app import make_app
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
OFFLINE_AFTER = 4.0
POLL = 1.0


@pytest.fixture(params=["redis_url", "rabbitmq_url"])
def broker_url(request: pytest.FixtureRequest) -> str:
    """Each test runs once on Redis and once on RabbitMQ."""
    return str(request.getfixturevalue(request.param))


@pytest.fixture
def start_worker(
    broker_url: str, unique: str, tmp_path: Path
) -> Iterator[Callable[[str, bool], subprocess.Popen[bytes]]]:
    """Start test-app workers in their own process groups; kill the groups afterwards."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(name: str, events: bool) -> subprocess.Popen[bytes]:
        env = dict(os.environ, SC_TEST_BROKER_URL=broker_url, SC_TEST_SUFFIX=unique)
        cmd = [sys.executable, "-m", "celery", "-A", "tests.cluster_support.app", "worker",
               "-n", f"{name}-{unique}@%h", "-P", "prefork", "-c", "2", "-l", "INFO",
               "--without-mingle", "--without-gossip", *(["-E"] if events else [])]  # fmt: skip
        with open(tmp_path / f"{name}.log", "wb") as log:
            proc = subprocess.Popen(
                cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        procs.append(proc)
        return proc

    try:
        yield start
    finally:
        for proc in procs:
            kill_group(proc)


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL a worker's whole process group and reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def worker(snap: ClusterSnapshot, prefix: str) -> WorkerInfo | None:
    """The worker whose hostname starts with ``prefix``, if shown."""
    return next((w for w in snap.workers if w.hostname.startswith(prefix)), None)


def test_monitor_sees_workers_tasks_and_controls_them(
    broker_url: str, unique: str, start_worker: Callable[[str, bool], subprocess.Popen[bytes]]
) -> None:
    app = make_app(broker_url, unique)
    monitor = ClusterMonitor(
        app, offline_after=OFFLINE_AFTER, poll_interval=POLL, inspect_timeout=0.5
    )
    monitor.start()
    try:
        start_worker("w1", True)
        w2 = start_worker("w2", False)  # events off: the monitor must turn them on
        w1p, w2p = f"w1-{unique}@", f"w2-{unique}@"

        def both_online() -> ClusterSnapshot | None:
            snap = monitor.snapshot()
            ones = [worker(snap, p) for p in (w1p, w2p)]
            return snap if all(w is not None and w.online for w in ones) else None

        wait_until("both workers online", both_online, 60)
        assert monitor.receiver_state in ("listening", "inspect")
        assert f"cluster-test-{unique}" in wait_until(
            "consumed queues", lambda: monitor.snapshot().consumed_queues
        )
        w1 = wait_until("w1 pool size", lambda: worker(monitor.snapshot(), w1p))
        assert w1.pool_size == 2 or wait_until(
            "w1 stats", lambda: (worker(monitor.snapshot(), w1p) or w1).pool_size == 2
        )

        # active tasks while sleep tasks run, with name, worker and args
        sleeps = [app.send_task("cluster_test.sleep", args=[60]) for _ in range(4)]

        def four_active() -> list[TaskInfo] | None:
            active = [t for t in monitor.snapshot().active_tasks if t.state == "STARTED"]
            return active if len(active) == 4 else None

        for task in wait_until("4 running sleep tasks", four_active, 30):
            assert task.name == "cluster_test.sleep"
            assert task.worker and task.worker.startswith((w1p, w2p))
            assert "60" in task.args
        hosts = {w.hostname: w.active for w in monitor.snapshot().workers}
        assert sum(hosts.values()) == 4

        # revoke(terminate=True) kills running sleep tasks
        for result in sleeps:
            monitor.control.revoke(result.id, terminate=True)
        wait_until(
            "revoked sleep tasks",
            lambda: all((monitor.task(r.id) or _none).state == "REVOKED" for r in sleeps),
        )
        wait_until("no active tasks", lambda: not monitor.snapshot().active_tasks)

        # processed / failed counts after a mix of tasks, failed task detail
        adds = [app.send_task("cluster_test.add", args=[i, i]) for i in range(6)]
        fails = [app.send_task("cluster_test.fail", args=[f"boom-{i}"]) for i in range(3)]

        def counted() -> tuple[int, int] | None:
            ws = [w for w in monitor.snapshot().workers if w.hostname.startswith((w1p, w2p))]
            got = (sum(w.processed for w in ws), sum(w.failed for w in ws))
            return got if got == (9, 3) else None

        wait_until("processed 9, failed 3", counted, 30)
        # per-queue counts for the rates: 13 sent from here (task-sent), 13 taken by workers
        queue = f"cluster-test-{unique}"
        wait_until("13 sent, 13 taken", lambda: monitor.snapshot().enqueued.get(queue) == 13)
        assert monitor.snapshot().dequeued.get(queue, 0) >= 13
        assert all((monitor.task(r.id) or _none).result == str(2 * i) for i, r in enumerate(adds))
        failed = monitor.task(fails[0].id)
        assert failed is not None and failed.state == "FAILURE"
        assert failed.exception is not None and "boom-0" in failed.exception
        assert failed.traceback is not None and "ValueError" in failed.traceback

        # pool_grow shows in the pool size that stats reports
        w1 = worker(monitor.snapshot(), w1p) or w1
        RemoteControl(app, timeout=2.0).pool_grow(w1.hostname, 1)
        wait_until("w1 pool of 3", lambda: (worker(monitor.snapshot(), w1p) or w1).pool_size == 3)
        assert RemoteControl(app).ping([w1.hostname]) == {w1.hostname: True}

        # kill -9 one worker: shown offline within offline_after plus a margin
        kill_group(w2)
        killed = time.monotonic()
        wait_until(
            "w2 offline",
            lambda: not (worker(monitor.snapshot(), w2p) or _offline).online,
            OFFLINE_AFTER + POLL + 3.0,
        )
        assert time.monotonic() - killed <= OFFLINE_AFTER + POLL + 3.0
        assert (worker(monitor.snapshot(), w1p) or _offline).online
    finally:
        monitor.stop()
    assert not monitor.receiver.alive


class _Blank:
    """Stands in for a missing task or worker in probes."""

    state = None
    result = None
    online = False


_none = _Blank()
_offline = _Blank()
