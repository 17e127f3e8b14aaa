"""A real worker (and beat) on a real Redis: events flow through to the store exactly once."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.waiting import wait_until
from workers.app import make_app
from workers.routing import queue_names
from workers.store import EventStore

REPO = Path(__file__).resolve().parents[2]
Spawn = Callable[..., subprocess.Popen[bytes]]


def make_env(broker_url: str, unique: str, tmp_path: Path) -> dict[str, str]:
    """Environment for the worker, beat and client: private broker, queues and store."""
    return {
        "SENTRY_BROKER_URL": broker_url,
        "SENTRY_QUEUE_SUFFIX": f"-{unique}",
        "SENTRY_EVENT_STORE": str(tmp_path / "events.sqlite3"),
    }


@pytest.fixture
def stack_env(redis_url: str, unique: str, tmp_path: Path) -> dict[str, str]:
    """The stack's environment on the test's private Redis database."""
    return make_env(redis_url, unique, tmp_path)


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Spawn]:
    """Start `celery -A workers.app ...` in its own process group; kill every group at the end."""
    procs: list[subprocess.Popen[bytes]] = []
    log = (tmp_path / "celery.log").open("ab")

    def start(env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "workers.app", *args],
            cwd=REPO,
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        procs.append(proc)
        return proc

    try:
        yield start
    finally:
        for proc in procs:
            _stop_group(proc)
        log.close()


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    """Warm shutdown of the whole group, then SIGKILL for whatever is left of it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=15)
    # Also reaches pool children that outlive their parent.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def start_worker(spawn: Spawn, env: dict[str, str], unique: str) -> subprocess.Popen[bytes]:
    """A worker consuming every suffixed queue with two pool processes."""
    return spawn(
        env,
        "worker",
        "-Q",
        ",".join(queue_names(f"-{unique}")),
        "-c",
        "2",
        "-l",
        "WARNING",
        "--without-gossip",
        "--without-mingle",
        "-n",
        f"test-{unique}@%h",
    )


def event(n: int) -> dict[str, Any]:
    """A raw event as the console sends it."""
    return {
        "event_id": f"{n:032x}",
        "project": "default",
        "level": "ERROR" if n % 2 else "warning",
        "message": f"something broke #{n}",
        "platform": "python",
        "timestamp": time.time(),
        "tags": {"n": n},
        "exception": {"type": "ValueError", "value": f"bad {n}"},
    }


def broker_idle(redis_url: str) -> bool:
    """No message waits in any queue and none is delivered but unacknowledged."""
    client = redis.Redis.from_url(redis_url)
    try:
        if client.hlen("unacked"):
            return False
        for key in client.scan_iter(count=1000):
            if client.type(key) == b"list" and client.llen(key):
                return False
        return True
    finally:
        client.close()


def test_events_are_saved_exactly_once(
    spawn: Spawn, stack_env: dict[str, str], unique: str, redis_url: str, tmp_path: Path
) -> None:
    worker = start_worker(spawn, stack_env, unique)
    client = make_app(stack_env, main="test-client")
    ingest = client.conf.console_ingest_task
    queue = f"events.process_event-{unique}"
    events = [event(n) for n in range(200)]
    with client.producer_or_acquire() as prod:
        for item in [*events, *events[:10], {"event_id": "not-hex", "message": "dropped"}]:
            client.send_task(ingest, args=[item], queue=queue, producer=prod)

    store = EventStore(stack_env["SENTRY_EVENT_STORE"])
    log = tmp_path / "celery.log"
    wait_until(
        "200 stored events",
        lambda: Path(store.path).exists() and store.count() >= 200,
        60,
        seen=log.read_text,
    )
    wait_until("the queues to drain", lambda: broker_idle(redis_url), 30, seen=log.read_text)
    assert store.count() == 200
    stored = store.get(f"{7:032x}")
    assert stored is not None
    assert stored["level"] == "error"
    assert stored["tags"] == {"n": "7"}
    assert len(stored["fingerprint"]) == 40
    assert worker.poll() is None, log.read_text()
    assert "dropping malformed event" in log.read_text()
    store.close()


def test_beat_drives_the_heartbeat_through_a_worker(
    spawn: Spawn, stack_env: dict[str, str], unique: str, tmp_path: Path
) -> None:
    start_worker(spawn, stack_env, unique)
    spawn(stack_env, "beat", "-l", "WARNING", "-s", str(tmp_path / "beat-schedule"))
    store = EventStore(stack_env["SENTRY_EVENT_STORE"])
    # The heartbeat interval is 10 s; the first one is sent one interval after start.
    wait_until(
        "a heartbeat from beat",
        lambda: Path(store.path).exists() and store.last_heartbeat() is not None,
        45,
        seen=(tmp_path / "celery.log").read_text,
    )
    store.close()


@pytest.mark.rabbitmq
def test_events_flow_through_rabbitmq(
    spawn: Spawn, rabbitmq_url: str, unique: str, tmp_path: Path
) -> None:
    env = make_env(rabbitmq_url, unique, tmp_path)
    worker = start_worker(spawn, env, unique)
    client = make_app(env, main="test-client")
    assert client.conf.broker_transport_options == {"confirm_publish": True}
    queue = f"events.process_event-{unique}"
    with client.producer_or_acquire() as prod:
        for n in range(50):
            client.send_task(
                client.conf.console_ingest_task,
                args=[event(n)],
                queue=queue,
                priority=n % 10,
                producer=prod,
            )
    store = EventStore(env["SENTRY_EVENT_STORE"])
    wait_until(
        "50 stored events",
        lambda: Path(store.path).exists() and store.count() >= 50,
        60,
        seen=(tmp_path / "celery.log").read_text,
    )
    assert store.count() == 50
    assert worker.poll() is None
    store.close()
