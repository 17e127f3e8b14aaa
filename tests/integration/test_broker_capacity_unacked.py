"""Unacked work on Redis, counted per queue from kombu's unacked hash, with real workers."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from kombu import Connection

from console.broker.capacity import BrokerCapacity
from console.broker.redis_capacity import RedisCapacityProbe, app_routes
from console.broker.urls import parse_broker_url
from tests.cluster_support.app import make_app
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def worker(redis_url: str, unique: str, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """One prefork worker (2 processes, prefetch 1, late acks) in its own process group."""
    env = dict(os.environ, SC_TEST_BROKER_URL=redis_url, SC_TEST_SUFFIX=unique)
    cmd = [sys.executable, "-m", "celery", "-A", "tests.cluster_support.app", "worker",
           "-n", f"hold-{unique}@%h", "-P", "prefork", "-c", "2", "-l", "INFO",
           "--without-mingle", "--without-gossip"]  # fmt: skip
    with open(tmp_path / "worker.log", "wb") as log:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def test_workers_holding_tasks_show_unacked_and_overdue(
    redis_url: str, unique: str, worker: subprocess.Popen[bytes]
) -> None:
    app = make_app(redis_url, unique)
    queue = app.conf.task_default_queue
    other = f"other-{unique}"
    for _ in range(5):
        app.send_task("cluster_test.sleep", args=(60,), queue=queue)
    # A visibility timeout far below the tasks' run time makes held work overdue within seconds.
    options = {"visibility_timeout": 2}
    probe = RedisCapacityProbe(parse_broker_url(redis_url), options, app_routes(app), timeout=2.0)
    try:

        def held() -> BrokerCapacity | None:
            cap = probe.poll([queue, other])
            row = cap.queue(queue)
            return cap if row is not None and row.unacked == 2 else None

        cap = wait_until("the worker to hold two tasks", held, timeout=60, step=0.2)
        assert cap.unacked == 2
        assert cap.queue(other) is not None and cap.queue(other).unacked == 0  # type: ignore[union-attr]

        def overdue() -> BrokerCapacity | None:
            cap = probe.poll([queue, other])
            row = cap.queue(queue)
            return cap if row is not None and row.overdue == 2 else None

        cap = wait_until(
            "the held tasks to pass the visibility timeout", overdue, timeout=30, step=0.2
        )
        assert cap.overdue == 2
        assert "unacked-overdue" in {w.code for w in cap.warnings}
        rt = probe.round_trips
        probe.poll([queue, other])
        assert probe.round_trips == rt + 1, "known delivery tags must not be read again"
    finally:
        probe.close()
        app.control.purge()


def test_unacked_under_a_global_keyprefix(redis_url: str, unique: str) -> None:
    options = {"global_keyprefix": f"pfx-{unique}:"}
    name = f"q-{unique}"
    with Connection(redis_url, transport_options=options) as conn:
        q = conn.SimpleQueue(name)
        for i in range(3):
            q.put({"i": i})
        held = [q.get(timeout=5) for _ in range(2)]  # delivered, not acked
        probe = RedisCapacityProbe(parse_broker_url(redis_url), options, timeout=2.0)
        try:
            cap = probe.poll([name])
            row = cap.queue(name)
            assert cap.unacked == 2
            assert row is not None and row.unacked == 2 and row.overdue == 0
            assert row.bytes is not None and row.bytes > 0
            held[0].ack()
            cap = probe.poll([name])
            assert cap.unacked == 1 and cap.queue(name).unacked == 1  # type: ignore[union-attr]
        finally:
            probe.close()
            for message in held[1:]:
                message.ack()
            q.close()
