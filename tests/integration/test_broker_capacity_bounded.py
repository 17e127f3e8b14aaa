"""The Redis capacity poll never reads the whole unacked hash: a backlog cannot block Redis.

The probe runs as a Redis user that may not use the hash commands whose cost grows with the
hash (HKEYS, HVALS, HGETALL); it must still count unacked work per queue, and a backlog far
beyond the detail limit is read only up to a bound.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator

import pytest
import redis

from console.broker.redis_capacity import UNACKED_DETAIL_LIMIT, RedisCapacityProbe
from console.broker.urls import parse_broker_url
from tests.conftest import _in_ci

UNBOUNDED = ("hkeys", "hvals", "hgetall")


@pytest.fixture
def bounded_url(redis_server: tuple[str, int], redis_db: int, unique: str) -> Iterator[str]:
    """A URL for a Redis user without the unbounded hash commands; the user is deleted after."""
    host, port = redis_server
    admin = redis.Redis(host=host, port=port, db=redis_db)
    user, password = f"sc-test-bounded-{unique}", f"pw-{unique}"
    try:
        admin.acl_setuser(
            user,
            enabled=True,
            passwords=[f"+{password}"],
            keys=["*"],
            commands=["+@all", *(f"-{c}" for c in UNBOUNDED)],
        )
    except redis.ResponseError as exc:  # a Redis without ACLs (before 6.0)
        if _in_ci():
            raise
        pytest.skip(f"Redis has no ACL: {exc}")
    try:
        yield f"redis://{user}:{password}@{host}:{port}/{redis_db}"
    finally:
        with contextlib.suppress(redis.RedisError):
            admin.acl_deluser(user)
        admin.close()


def held_deliveries(client: redis.Redis, queue: str, count: int) -> None:
    """``count`` deliveries held unacked from ``queue``, as kombu records them."""
    pipe = client.pipeline(transaction=False)
    for n in range(count):
        tag = f"tag-{n}"
        payload = json.dumps([{"body": "x"}, queue, queue])
        pipe.hset("unacked", tag, payload)
        pipe.zadd("unacked_index", {tag: 1_000_000_000 + n})
        if n % 1000 == 999:
            pipe.execute()
    pipe.execute()


def test_unacked_per_queue_without_reading_the_whole_hash(
    bounded_url: str, redis_url: str, unique: str
) -> None:
    queue = f"q-{unique}"
    client = redis.Redis.from_url(redis_url)
    held_deliveries(client, queue, 7)
    probe = RedisCapacityProbe(parse_broker_url(bounded_url), timeout=2.0, clock=lambda: 1e9)
    try:
        cap = probe.poll([queue])
        row = cap.queue(queue)
        assert cap.unacked == 7
        assert row is not None and row.unacked == 7, "per-queue unacked unknown"
    finally:
        probe.close()
        client.close()


def test_a_backlog_beyond_the_limit_is_read_within_a_bound(
    bounded_url: str, redis_url: str, unique: str
) -> None:
    queue = f"q-{unique}"
    client = redis.Redis.from_url(redis_url)
    held_deliveries(client, queue, UNACKED_DETAIL_LIMIT * 3)
    probe = RedisCapacityProbe(parse_broker_url(bounded_url), timeout=5.0, clock=lambda: 1e9)
    try:
        cap = probe.poll([queue])  # the first poll: nothing known about the hash yet
        assert cap.unacked == UNACKED_DETAIL_LIMIT * 3
        row = cap.queue(queue)
        assert row is not None and row.unacked is None, "too many to count per queue"
        assert probe.round_trips == 1
    finally:
        probe.close()
        client.close()
