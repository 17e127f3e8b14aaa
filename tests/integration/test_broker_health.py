"""Broker health on real brokers: connected, refused, timed out, bad password, reconnects."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from console.broker.embedded import EmbeddedBroker
from console.broker.health import BrokerHealth, BrokerHealthProbe
from console.broker.urls import parse_broker_url

SECRET = "Hunter2Secret"


def closed_port() -> int:
    """A local TCP port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A local port that accepts connections but never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield int(sock.getsockname()[1])


def assert_clean(health: BrokerHealth) -> None:
    """Nothing in the reading shows the password."""
    assert SECRET not in repr(health) and SECRET not in str(health.reason)


def test_redis_connected(redis_url: str) -> None:
    probe = BrokerHealthProbe(parse_broker_url(redis_url), clock=lambda: 1234.5)
    try:
        assert probe.last.state == "connecting"
        health = probe.check()
        assert health.state == "connected" and health.reason is None
        assert health.rtt_ms is not None and 0 < health.rtt_ms < 1000
        version = redis.Redis.from_url(redis_url).info("server")["redis_version"]
        assert health.server_version == version
        assert (health.reconnects, health.last_ok) == (0, 1234.5)
        assert probe.check().reconnects == 0
    finally:
        probe.close()


@pytest.mark.rabbitmq
def test_amqp_connected(rabbitmq_url: str) -> None:
    probe = BrokerHealthProbe(parse_broker_url(rabbitmq_url))
    try:
        health = probe.check()
        assert health.state == "connected", health
        assert health.rtt_ms is not None and health.rtt_ms > 0
        assert health.server_version and health.server_version[0].isdigit()
        assert probe.check().reconnects == 0
    finally:
        probe.close()


@pytest.mark.parametrize("scheme", ["redis", "amqp"])
def test_closed_port_is_refused_within_timeout(scheme: str) -> None:
    url = parse_broker_url(f"{scheme}://u:{SECRET}@127.0.0.1:{closed_port()}/0")
    probe = BrokerHealthProbe(url, timeout=1.0)
    started = time.monotonic()
    health = probe.check()
    assert time.monotonic() - started < 1.5
    assert (health.state, health.reason, health.last_ok) == ("down", "connection refused", None)
    assert_clean(health)
    probe.close()


@pytest.mark.parametrize("scheme", ["redis", "amqp"])
def test_silent_server_times_out(scheme: str, silent_port: int) -> None:
    probe = BrokerHealthProbe(
        parse_broker_url(f"{scheme}://127.0.0.1:{silent_port}/0"), timeout=0.5
    )
    started = time.monotonic()
    health = probe.check()
    assert time.monotonic() - started < 2.0
    assert (health.state, health.reason) == ("down", "timed out")
    probe.close()


@pytest.mark.rabbitmq
def test_amqp_wrong_password(rabbitmq_url: str) -> None:
    vhost = parse_broker_url(rabbitmq_url).vhost
    probe = BrokerHealthProbe(parse_broker_url(f"amqp://guest:{SECRET}@127.0.0.1:5672/{vhost}"))
    health = probe.check()
    assert (health.state, health.reason) == ("down", "authentication failed")
    assert_clean(health)
    probe.close()


def test_embedded_broker_down_then_back(state_dir: Path) -> None:
    broker = EmbeddedBroker(state_dir)
    probe = BrokerHealthProbe(parse_broker_url(broker.url), timeout=1.0, clock=time.time)
    try:
        broker.start()
        first = probe.check()
        assert (first.state, first.reconnects) == ("connected", 0)
        assert first.server_version
        broker.stop()
        down = probe.check()
        assert down.state == "down" and down.reason in {"socket not found", "connection lost"}
        assert down.last_ok == first.last_ok and down.server_version == first.server_version
        broker.start()
        back = probe.check()
        assert (back.state, back.reconnects) == ("connected", 1)
        assert back.last_ok is not None and first.last_ok is not None
        assert back.last_ok >= first.last_ok
    finally:
        probe.close()
        pid = broker.pid
        broker.stop(timeout=5)
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_stale_connection_is_replaced_in_one_check(state_dir: Path) -> None:
    broker = EmbeddedBroker(state_dir)
    probe = BrokerHealthProbe(parse_broker_url(broker.url), timeout=2.0)
    try:
        broker.start()
        assert probe.check().state == "connected"
        client = redis.Redis.from_url(parse_broker_url(broker.url).to_redis_py_url())
        client.client_kill_filter(skipme=True)  # drop the probe's connection behind its back
        client.close()
        health = probe.check()
        assert (health.state, health.reconnects) == ("connected", 1)
    finally:
        probe.close()
        broker.stop(timeout=5)
