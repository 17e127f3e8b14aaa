"""The coordinated cron publishes on a connection of its own, never through beat's cached
``producer``/``connection`` (whose caching is beat's private business), and reconnects after
dropping it."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest
import redis
from celery import Celery

from console.cron import role as roles
from console.cron.scheduler import CoordinatedScheduler
from console.supervision import ProcessSnapshot, ProcessState
from tests.waiting import wait_until


class WithoutBeatsPublisher(CoordinatedScheduler):
    """Beat's cached publishing properties made unusable."""

    @property
    def producer(self) -> NoReturn:
        raise AssertionError("beat's cached producer was used")

    @property
    def connection(self) -> NoReturn:
        raise AssertionError("beat's cached connection was used")


@pytest.fixture
def scheduler(redis_url: str, unique: str) -> Iterator[WithoutBeatsPublisher]:
    """A coordinated cron with one entry due every second, sending to ``q-<unique>``."""
    app = Celery(f"pub-{unique}", set_as_current=False)
    app.conf.update(
        broker_url=redis_url,
        beat_schedule={"tick": {"task": f"pub-{unique}.tick", "schedule": 1.0}},
        task_default_queue=f"q-{unique}",
        console_cron_takeover=1.0,
        timezone="UTC",
    )
    made = WithoutBeatsPublisher(app=app)
    try:
        yield made
    finally:
        made.close()


def sends(scheduler: CoordinatedScheduler, client: redis.Redis, queue: str, count: int) -> None:
    """Tick until ``queue`` holds ``count`` messages."""

    def enough() -> Any:
        scheduler.tick()
        return client.llen(queue) >= count

    wait_until(f"{count} sends", enough, timeout=15, step=0.05, seen=lambda: client.llen(queue))


def test_sends_without_beats_cached_producer_and_after_a_drop(
    scheduler: WithoutBeatsPublisher, redis_url: str, unique: str
) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        sends(scheduler, client, f"q-{unique}", 1)
        scheduler._drop_producer()  # as after a failed publish or a regained lead
        sends(scheduler, client, f"q-{unique}", 2)
    finally:
        client.close()


def test_the_leader_records_its_last_slot_sent_for_the_metrics(
    redis_url: str, unique: str, tmp_path: Path
) -> None:
    app = Celery(f"slot-{unique}", set_as_current=False)
    app.conf.update(
        broker_url=redis_url,
        beat_schedule={"tick": {"task": f"slot-{unique}.tick", "schedule": 1.0}},
        task_default_queue=f"q-{unique}",
        console_cron_takeover=1.0,
        console_cron_state_dir=str(tmp_path),
        timezone="UTC",
    )
    scheduler = CoordinatedScheduler(app=app)
    client = redis.Redis.from_url(redis_url)
    try:
        sends(scheduler, client, f"q-{unique}", 2)
        record = roles.read_role(tmp_path, os.getpid())
        assert record is not None and record["role"] == roles.LEADER, record
        slot = record["last_slot"]
        assert time.time() - 5 < slot <= time.time(), record
        snap = ProcessSnapshot(
            name="cron", group="cron", state=ProcessState.RUNNING, pid=os.getpid(), pgid=None,
            started_at=None, uptime=1.0, restarts=0, exitstatus=None, backoff_remaining=None,
            cpu_percent=None, rss_bytes=None, description="",
        )  # fmt: skip
        shown = roles.with_cron_role(snap, tmp_path, "cron")
        assert shown.role == roles.LEADER and shown.last_slot == slot
        roles.write_role(tmp_path, os.getpid(), roles.STANDBY)  # a role change keeps it
        assert roles.read_role(tmp_path, os.getpid())["last_slot"] == slot  # type: ignore[index]
    finally:
        scheduler.close()
        client.delete(f"q-{unique}")
        client.close()
