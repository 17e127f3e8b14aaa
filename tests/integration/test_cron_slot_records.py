"""Redis slot records: kept with a TTL far beyond the schedule's interval, and a record lost
from the broker (evicted, deleted) is said in the log and costs no tick."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import redis
from celery import Celery

from console.cron import role as roles
from console.cron.redis_lease import KEY_PREFIX
from console.cron.scheduler import CoordinatedScheduler
from console.cron.slots import RECORD_TTL_FLOOR
from tests.waiting import wait_until

EVERY = 1.0


@pytest.fixture
def scheduler(redis_url: str, unique: str) -> Iterator[CoordinatedScheduler]:
    """A coordinated cron for an app with one entry due every second; closed at the end."""
    app = Celery(f"slots-{unique}", set_as_current=False)
    app.conf.update(
        broker_url=redis_url,
        beat_schedule={"tick": {"task": f"slots-{unique}.tick", "schedule": EVERY}},
        task_default_queue=f"q-{unique}",
        console_cron_takeover=1.0,
        timezone="UTC",
    )
    made = CoordinatedScheduler(app=app)
    try:
        yield made
    finally:
        made.close()


def record_key(client: redis.Redis, scheduler: CoordinatedScheduler) -> str:
    """The slot record of the entry ``tick``, once there is one."""
    key = f"{KEY_PREFIX}{scheduler.lease}:slot:tick"

    def recorded() -> bool:
        scheduler.tick()
        return bool(client.exists(key))

    wait_until("the slot record", recorded, timeout=10, step=0.05)
    return key


def test_slot_records_expire_long_after_the_interval(
    scheduler: CoordinatedScheduler, redis_url: str
) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        key = record_key(client, scheduler)
        ttl = client.pttl(key) / 1000
        assert ttl > 0, "the slot record never expires (a removed entry's record stays forever)"
        assert ttl >= RECORD_TTL_FLOOR * 0.99 and ttl >= 100 * EVERY
    finally:
        client.close()


def test_a_lost_record_is_logged_and_costs_no_tick(
    scheduler: CoordinatedScheduler, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        key = record_key(client, scheduler)
        assert scheduler.role == roles.LEADER
        before = float(client.get(key) or 0)
        client.delete(key)  # as an eviction would
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="console.cron"):

            def sent_again() -> bool:
                scheduler.tick()
                return float(client.get(key) or 0) > before

            wait_until("the next slot recorded", sent_again, timeout=10, step=0.05)
        messages = [r.getMessage() for r in caplog.records]
        assert any("lost" in m and "tick" in m for m in messages), messages
        assert not any("first seen" in m for m in messages), "the lost record cost a tick"
        assert any("Sending due task tick" in m for m in messages), messages
    finally:
        client.close()
