"""The broker leases themselves, on a real Redis and a real RabbitMQ: one leader, and the
fence that stops an ex-leader (lease expired, connection dropped) from recording a slot."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from console.broker.urls import parse_broker_url
from console.cron.amqp_lease import AMQPCoordinator
from console.cron.coordinator import make_coordinator
from console.cron.lease import BrokerUnavailable, Coordinator, LeaseTiming
from console.cron.redis_lease import RedisCoordinator

FAST = LeaseTiming(1.0)  # a 0.6 s Redis lease, a 1 s AMQP heartbeat


def becomes_leader(coordinator: Coordinator, timeout: float = 10.0) -> bool:
    """Whether ``coordinator`` leads within ``timeout`` (a handed-over token takes a moment)."""
    deadline = time.monotonic() + timeout
    while not coordinator.refresh().leader:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.fixture(params=["redis", pytest.param("rabbitmq", marks=pytest.mark.rabbitmq)])
def pair(request: pytest.FixtureRequest, unique: str) -> Iterator[tuple[Coordinator, Coordinator]]:
    """Two coordinators for the same app on the test's private broker, released at the end."""
    name = "redis_url" if request.param == "redis" else "rabbitmq_url"
    url = parse_broker_url(str(request.getfixturevalue(name)))
    made = (make_coordinator(url, unique, FAST), make_coordinator(url, unique, FAST))
    try:
        yield made
    finally:
        for coordinator in made:
            coordinator.release()


def test_one_leader_and_slots_recorded_once(pair: tuple[Coordinator, Coordinator]) -> None:
    first, second = pair
    assert becomes_leader(first)
    assert not second.refresh().leader
    assert first.refresh().leader  # renewal
    assert not second.refresh().leader
    assert first.last_slot("tick") is None
    assert first.claim("tick", 100.0)
    assert not first.claim("tick", 100.0)
    assert not first.claim("tick", 99.0)
    assert not second.claim("tick", 101.0)
    first.release()  # a warm stop hands over at once: the waiting standby wakes
    started = time.monotonic()
    second.wait(5.0)
    assert time.monotonic() - started < 1.0
    assert becomes_leader(second, timeout=2.0)
    assert second.last_slot("tick") == 100.0
    assert second.claim("tick", 101.0)


def test_an_expired_redis_leader_cannot_claim(redis_url: str, unique: str) -> None:
    url = parse_broker_url(redis_url)
    first, second = RedisCoordinator(url, unique, FAST), RedisCoordinator(url, unique, FAST)
    try:
        refresh = first.refresh()
        assert refresh.leader and refresh.term == 1
        time.sleep(FAST.ttl + 0.2)  # first is "frozen": no renewal
        taken = second.refresh()
        assert taken.leader and taken.term == 2
        assert second.claim("tick", 10.0)
        assert not first.claim("tick", 11.0)  # fenced: the lease is no longer its own
        standby = first.refresh()
        assert not standby.leader
        assert standby.holder is not None and ":" in standby.holder
    finally:
        first.release()
        second.release()


@pytest.mark.rabbitmq
def test_an_amqp_leader_whose_connection_died_cannot_claim(rabbitmq_url: str, unique: str) -> None:
    url = parse_broker_url(rabbitmq_url)
    first, second = AMQPCoordinator(url, unique, FAST), AMQPCoordinator(url, unique, FAST)
    try:
        assert becomes_leader(first)
        assert first.claim("tick", 10.0)
        assert not second.refresh().leader
        # The broker drops first's connection (as after missed heartbeats); first does not know.
        conn = first._conn
        assert conn is not None
        conn.sock.close()
        assert becomes_leader(second), "the token was not handed over with the connection"
        assert second.last_slot("tick") == 10.0
        assert second.claim("tick", 11.0)
        with pytest.raises(BrokerUnavailable):
            first.claim("tick", 12.0)
        assert not first.refresh().leader
    finally:
        first.release()
        second.release()
