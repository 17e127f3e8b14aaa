"""The coordinated cron publishes on a connection of its own, never through beat's cached
``producer``/``connection`` (whose caching is beat's private business), and reconnects after
dropping it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NoReturn

import pytest
import redis
from celery import Celery

from console.cron.scheduler import CoordinatedScheduler
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
