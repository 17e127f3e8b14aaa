"""`<` never empties a pool: a real worker with one process refuses to shrink, with a message."""

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
from celery import Celery

from console.actions import Outcome
from console.cluster import RemoteControl
from console.cluster.control import PoolLimit
from console.runtime import ConsoleRuntime
from console.settings import Settings, WorkerGroup
from tests.cluster_support.app import make_app
from tests.supervision_support.fakes import make_supervisor

ROOT = Path(__file__).resolve().parents[2]


def wait_for(what: str, probe: Callable[[], object], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.fixture
def one_process_worker(redis_url: str, unique: str, tmp_path: Path) -> Iterator[tuple[Celery, str]]:
    """A real prefork worker with a pool of one, in its own process group (killed afterwards)."""
    hostname = f"pool-{unique}@{os.uname().nodename}"
    env = dict(os.environ, SC_TEST_BROKER_URL=redis_url, SC_TEST_SUFFIX=unique)
    cmd = [sys.executable, "-m", "celery", "-A", "tests.cluster_support.app", "worker",
           "-n", hostname, "-P", "prefork", "-c", "1", "-l", "INFO",
           "--without-mingle", "--without-gossip"]  # fmt: skip
    with open(tmp_path / "worker.log", "wb") as log:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield make_app(redis_url, unique), hostname
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def test_shrinking_a_pool_of_one_is_refused_locally_and_by_the_runtime(
    one_process_worker: tuple[Celery, str], redis_url: str, tmp_path: Path
) -> None:
    app, hostname = one_process_worker
    control = RemoteControl(app, timeout=2.0)
    wait_for("the worker answers", lambda: control.ping([hostname]).get(hostname))
    assert control.pool_size(hostname) == 1
    with pytest.raises(PoolLimit, match="keeps at least 1"):
        control.pool_shrink(hostname, 1)
    assert control.pool_size(hostname) == 1, "the refused shrink must not reach the worker"

    settings = Settings(
        broker=None, broker_source="test", state_dir=tmp_path, worker_groups=(WorkerGroup(),)
    ).with_broker(redis_url, "test")
    sup, _clock, _spawner = make_supervisor()
    runtime = ConsoleRuntime(settings, app, sup)
    runtime.control = control
    try:
        refused = runtime.pool(hostname, -1)
        assert refused.outcome is Outcome.REFUSED and "at least 1" in refused.message
        assert runtime.pool(hostname, 1).ok
        wait_for("a pool of 2", lambda: control.pool_size(hostname) == 2)
        assert runtime.pool(hostname, -1).ok  # 2 -> 1 is allowed
        wait_for("a pool of 1", lambda: control.pool_size(hostname) == 1)
        assert runtime.pool(hostname, -1).outcome is Outcome.REFUSED
    finally:
        control.close()
        sup.shutdown(timeout=1)


def test_two_workers_with_one_node_name_are_reported(
    one_process_worker: tuple[Celery, str], redis_url: str, unique: str, tmp_path: Path
) -> None:
    """Two consoles that gave their workers one name: the clash shows in the console's errors."""
    from console.cluster import ClusterMonitor
    from console.cluster.errors import DUPLICATE

    app, hostname = one_process_worker
    env = dict(os.environ, SC_TEST_BROKER_URL=redis_url, SC_TEST_SUFFIX=unique)
    cmd = [sys.executable, "-m", "celery", "-A", "tests.cluster_support.app", "worker",
           "-n", hostname, "-P", "solo", "-l", "INFO",
           "--without-mingle", "--without-gossip"]  # fmt: skip
    with open(tmp_path / "twin.log", "wb") as log:
        twin = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    control = RemoteControl(app, timeout=2.0)
    monitor = ClusterMonitor(app)
    monitor.control = control
    try:
        wait_for("both answer", lambda: control.ping() and control.duplicates == {hostname}, 60)
        monitor.poll_once()
        assert monitor.snapshot().errors.get(DUPLICATE, 0) >= 1
    finally:
        control.close()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(twin.pid, signal.SIGKILL)
        twin.wait(timeout=10)
