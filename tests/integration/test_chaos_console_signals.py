"""A real headless console with Celery workers and cron, killed or hung up mid-run."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from console.eventgen import send_events
from tests.chaos_support.helpers import DriverProcess, store_count, wait_gone
from tests.waiting import wait_until
from workers.app import make_app

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


@pytest.fixture
def child_env(redis_url: str, state_dir: Path, unique: str) -> dict[str, str]:
    """What the console passes on: a private queue suffix, event store and short visibility."""
    return {
        "SENTRY_QUEUE_SUFFIX": f"-{unique}",
        "SENTRY_EVENT_STORE": str(state_dir / "events.sqlite3"),
        "SENTRY_VISIBILITY_TIMEOUT": "10",
        "SENTRY_BROKER_URL": redis_url,
    }


@pytest.fixture
def drivers() -> Iterator[list[DriverProcess]]:
    """Consoles a test starts; each is killed with everything it started, whatever happens."""
    started: list[DriverProcess] = []
    try:
        yield started
    finally:
        for driver in started:
            driver.cleanup()


def start_console(
    drivers: list[DriverProcess], redis_url: str, state_dir: Path, env: dict[str, str], unique: str
) -> DriverProcess:
    driver = DriverProcess(
        redis_url, state_dir, env, "--workers", "2", "--hostname", f"w{unique}-{{n}}@%h"
    )
    drivers.append(driver)
    driver.wait_ready()
    return driver


def test_sigkilled_console_leaves_no_descendant_within_3_seconds(
    drivers: list[DriverProcess],
    redis_url: str,
    state_dir: Path,
    child_env: dict[str, str],
    unique: str,
) -> None:
    driver = start_console(drivers, redis_url, state_dir, child_env, unique)
    # guards, worker mains with their pool children, and cron: 2 * (1 + 1 + 2) + 2
    wait_until("the pool children", lambda: len(driver.note_descendants()) >= 10, 30)
    found = driver.note_descendants()
    driver.proc.kill()
    driver.proc.wait(5)
    began = time.monotonic()
    assert wait_gone(found, 3.0) == []
    print(f"{len(found)} descendants gone {time.monotonic() - began:.3f}s after SIGKILL")


def test_sighup_shuts_children_down_warm_and_a_restart_loses_nothing(
    drivers: list[DriverProcess],
    redis_url: str,
    state_dir: Path,
    child_env: dict[str, str],
    unique: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key, value in child_env.items():
        monkeypatch.setenv(key, value)
    app = make_app({**os.environ, "SENTRY_BROKER_URL": redis_url})
    store = Path(child_env["SENTRY_EVENT_STORE"])
    total = 1500
    began = time.monotonic()
    first = start_console(drivers, redis_url, state_dir, child_env, unique)
    print(f"first console ready after {time.monotonic() - began:.1f}s")
    sender = threading.Thread(
        target=send_events, args=(app, "workers.process_event", total), kwargs={"rate": 600}
    )
    sender.start()
    try:
        wait_until("events flowing into the store", lambda: store_count(store) >= 200, 60)
        found = first.note_descendants()
        print(f"hang-up at {time.monotonic() - began:.1f}s")
        first.proc.send_signal(signal.SIGHUP)
        final = first.read()
        print(f"first console stopped at {time.monotonic() - began:.1f}s")
        assert first.proc.wait(60) == 0
    finally:
        sender.join(120)
    assert final["final"] == {
        "worker-1": ["STOPPED", 0],
        "worker-2": ["STOPPED", 0],
        "cron": ["STOPPED", 0],
    }, final
    assert final["lost"] == [], "a task was cut short instead of finished"
    assert wait_gone(found, 3.0) == []
    stored_at_hangup = store_count(store)
    assert stored_at_hangup < total, "the hang-up came too late to prove anything"

    second = start_console(drivers, redis_url, state_dir, child_env, unique)
    print(f"second console ready at {time.monotonic() - began:.1f}s")
    wait_until(f"{total} rows in the store", lambda: store_count(store) >= total, 120)
    print(f"all rows stored at {time.monotonic() - began:.1f}s")
    second.proc.send_signal(signal.SIGTERM)
    assert second.read()["lost"] == []
    assert second.proc.wait(60) == 0
    assert store_count(store) == total
    print(f"{stored_at_hangup} rows at the hang-up, {total} after the restart")
