"""Races in the runtime's actions: concurrent scaling ends at the exact count."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import Celery

from console.runtime import ConsoleRuntime
from console.settings import Settings, WorkerGroup
from tests.supervision_support.fakes import make_supervisor

URL = "redis://127.0.0.1:6379/15"  # never contacted: nothing here polls


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[ConsoleRuntime]:
    """A runtime on a fake spawner and clock, with one group of one process."""
    settings = Settings(
        broker=None,
        broker_source="test",
        state_dir=tmp_path,
        worker_groups=(WorkerGroup(processes=1), WorkerGroup(name="other", processes=2)),
        cron=False,
        max_processes=64,
    ).with_broker(URL, "test")
    sup, _clock, _spawner = make_supervisor()
    rt = ConsoleRuntime(settings, Celery("races", broker=URL), sup)
    yield rt
    sup.shutdown(timeout=1)


@pytest.fixture
def busy_switching() -> Iterator[None]:
    """Switch threads as often as the interpreter allows, so a race shows up every time."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def concurrently(calls: int, action: object) -> None:
    barrier = threading.Barrier(calls)

    def run() -> None:
        barrier.wait()
        action()  # type: ignore[operator]

    threads = [threading.Thread(target=run) for _ in range(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)


@pytest.mark.usefixtures("busy_switching")
def test_twenty_concurrent_scale_calls_end_at_the_exact_count(runtime: ConsoleRuntime) -> None:
    for _ in range(5):  # a lost update would show in one of the rounds
        concurrently(20, lambda: runtime.scale(+1))
        assert len(runtime.supervisor.group_members("worker")) == 21
        concurrently(20, lambda: runtime.scale(-1))
        assert len(runtime.supervisor.group_members("worker")) == 1
    assert len(runtime.supervisor.group_members("other")) == 0  # never started, never scaled
