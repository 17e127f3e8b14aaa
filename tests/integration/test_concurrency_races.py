"""Races between the poll, shutdown and remote control, with a real broker."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

from celery import Celery

from console.cluster import ClusterMonitor
from console.cluster.monitor import FIRST_PING_TIMEOUT
from console.runtime import ConsoleRuntime
from console.settings import Settings
from tests.integration.test_outage_broker import PrivateRedis, private_redis
from tests.supervision_support.fakes import make_supervisor

__all__ = ["private_redis"]  # the fixture, imported for the tests below


def test_the_first_ping_never_changes_the_shared_reply_timeout(redis_url: str) -> None:
    monitor = ClusterMonitor(Celery("ping", broker=redis_url))
    shared = monitor.control.timeout
    assert shared > FIRST_PING_TIMEOUT  # else the first ping has nothing to shorten
    seen: set[float] = set()
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            seen.add(monitor.control.timeout)
            time.sleep(0.001)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        monitor.poll_once()  # the first round: a discovery ping with the short timeout
    finally:
        done.set()
        watcher.join(5)
        monitor.control.close()
    assert monitor.polls == 1
    assert seen == {shared}  # other commands kept the timeout they share


def test_shutdown_waits_for_a_poll_in_flight_before_closing_the_probes(
    private_redis: PrivateRedis, tmp_path: Path
) -> None:
    url = f"redis://127.0.0.1:{private_redis.port}/0"
    settings = Settings(broker=None, broker_source="test", state_dir=tmp_path, cron=False)
    sup, _, _ = make_supervisor()
    runtime = ConsoleRuntime(settings.with_broker(url, "test"), Celery("sd", broker=url), sup)
    assert private_redis.proc is not None
    os.kill(private_redis.proc.pid, signal.SIGSTOP)  # accepts connections, answers nothing
    finished: dict[str, float] = {}

    def poll() -> None:
        runtime.poll()
        finished["poll"] = time.monotonic()

    poller = threading.Thread(target=poll)
    try:
        poller.start()
        time.sleep(0.3)  # let the poll get stuck in the health round trip
        runtime.shutdown()
        finished["shutdown"] = time.monotonic()
    finally:
        os.kill(private_redis.proc.pid, signal.SIGCONT)
        poller.join(10)
    assert finished["poll"] <= finished["shutdown"]
    assert runtime.health._session is None  # nothing reopened behind shutdown's back
