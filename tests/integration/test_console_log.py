"""The console's log and error counts with a real Redis: audited actions, survived failures."""

from __future__ import annotations

import getpass
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from celery import Celery

from console.cluster import ClusterMonitor
from console.cluster.errors import ON_CONNECT, POLL, UNDECODABLE
from console.cluster.receiver import EventReceiverThread
from console.cluster.state import ClusterState
from console.consolelog import close_console_log, setup_console_log
from console.programs import worker_program
from console.runtime import ConsoleRuntime, read_status
from console.settings import Settings, WorkerGroup
from tests.supervision_support.fakes import make_supervisor


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        time.sleep(0.05)


@pytest.fixture
def log_file(state_dir: Path) -> Iterator[Path]:
    path = setup_console_log(state_dir)
    try:
        yield path
    finally:
        close_console_log()


def test_restart_scale_and_purge_are_audited_with_the_user(
    redis_url: str, state_dir: Path, log_file: Path
) -> None:
    settings = Settings(
        broker=None, broker_source="test", state_dir=state_dir, worker_groups=(WorkerGroup(),)
    ).with_broker(redis_url, "test")
    sup, _, _ = make_supervisor()
    app = Celery("audit", broker=redis_url)
    app.conf.task_default_queue = "events.save_event"
    runtime = ConsoleRuntime(settings, app, sup)
    client = redis.Redis.from_url(redis_url)
    client.lpush("events.save_event", *[json.dumps({"n": n}) for n in range(1204)])
    client.close()
    sup.scale("worker", 1, lambda n: worker_program(settings, settings.worker_groups[0], n))
    runtime.restart("worker-1")
    runtime.scale(+1)
    runtime.purge("events.save_event")
    text = log_file.read_text()
    user = getpass.getuser()
    assert f"user {user}: restart worker-1: done: restarting worker-1" in text
    assert f"user {user}: scale +1: done: worker: scaling to 2" in text
    assert f"user {user}: purge events.save_event: done: purged 1204 messages" in text


def test_undecodable_events_and_a_failing_on_connect_hook_are_counted_and_logged(
    redis_url: str, redis_db: int, log_file: Path
) -> None:
    app = Celery("errors", broker=redis_url)

    def refuse() -> None:
        raise RuntimeError("enable_events refused")

    receiver = EventReceiverThread(app, ClusterState(), on_connect=refuse)
    receiver.start()
    try:
        wait_until(lambda: receiver.status == "listening", 20, "the receiver to listen")
        client = redis.Redis.from_url(redis_url)
        for body in (b"not json at all", b'{"body": "bm90IGpzb24=", "x": 1}'):
            client.publish(f"/{redis_db}.celeryev/worker.heartbeat", body)
        client.close()
        counts = receiver.errors.counts
        wait_until(lambda: counts().get(UNDECODABLE, 0) >= 2, 10, f"two undecodable: {counts()}")
    finally:
        receiver.stop()
    assert counts()[ON_CONNECT] >= 1
    text = log_file.read_text()
    assert "events on-connect failed: RuntimeError: enable_events refused" in text
    assert "undecodable event failed" in text


def test_a_failing_cluster_poll_is_counted_shown_and_written_to_the_status_file(
    state_dir: Path, log_file: Path
) -> None:
    url = "redis://:hunter22@127.0.0.1:1/0"  # nothing listens there
    monitor = ClusterMonitor(Celery("down", broker=url))
    monitor.poll_once()
    assert monitor.snapshot().errors == {POLL: 1}
    settings = Settings(broker=None, broker_source="test", state_dir=state_dir, cron=False)
    sup, _, _ = make_supervisor()
    runtime = ConsoleRuntime(settings.with_broker(url, "test"), Celery("down", broker=url), sup)
    runtime.monitor.poll_once()
    data = runtime.poll()
    assert data.errors == {POLL: 1}
    status = read_status(state_dir)
    assert status is not None
    assert status["errors"] == {POLL: 1} and status["log_file"] == str(log_file)
    text = log_file.read_text()
    assert "cluster poll failed" in text and "hunter22" not in text
