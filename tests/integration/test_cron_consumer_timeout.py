"""RabbitMQ's consumer timeout never takes the cron lease from a healthy leader.

The broker closes a channel whose oldest unacked delivery is older than ``consumer_timeout``;
it reads that setting when a channel opens and checks it every ``channel_tick_interval``. The
test lowers both (restoring them at the end, also on failure) only while the channels under
test open, so other users of the shared broker keep their 30 minutes.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import amqp
import pytest

from console.broker.urls import parse_broker_url
from console.cron.amqp_lease import AMQPCoordinator
from console.cron.lease import LeaseTiming
from tests.conftest import RABBIT_HOST
from tests.waiting import wait_until

pytestmark = pytest.mark.rabbitmq

TIMEOUT_MS = 3000
TICK_MS = 250
FAST = LeaseTiming(1.0)


def rabbit_env(key: str, value: str | None = None) -> str:
    """Read (or set, then read) the ``rabbit`` application's ``key`` on the running node."""
    if value is not None:
        expr = f"application:set_env(rabbit, {key}, {value})."
        if value == "undefined":
            expr = f"application:unset_env(rabbit, {key})."
        subprocess.run(["rabbitmqctl", "-q", "eval", expr], check=True, capture_output=True)
    done = subprocess.run(
        ["rabbitmqctl", "-q", "eval", f"application:get_env(rabbit, {key})."],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    answer = done.stdout.strip()
    return answer[4:-1] if answer.startswith("{ok,") else "undefined"


class ShortTimeout:
    """Opens channels under a short consumer timeout; puts the broker's settings back."""

    def __init__(self) -> None:
        self.saved = {key: rabbit_env(key) for key in ("consumer_timeout", "channel_tick_interval")}
        rabbit_env("channel_tick_interval", str(TICK_MS))

    @contextlib.contextmanager
    def opening(self) -> Iterator[None]:
        """Channels opened inside get the short timeout (the broker reads it at open)."""
        rabbit_env("consumer_timeout", str(TIMEOUT_MS))
        try:
            yield
        finally:
            rabbit_env("consumer_timeout", self.saved["consumer_timeout"])

    def restore(self) -> None:
        """Every setting back as it was."""
        for key, value in self.saved.items():
            rabbit_env(key, value)


@pytest.fixture
def short_timeout(rabbitmq_url: str) -> Iterator[ShortTimeout]:
    """The broker set up for a short consumer timeout, restored at the end."""
    lowered = ShortTimeout()
    try:
        yield lowered
    finally:
        lowered.restore()
        assert rabbit_env("consumer_timeout") == lowered.saved["consumer_timeout"]


class Canary:
    """A plain consumer that holds one delivery unacked: the broker's timeout closes it."""

    def __init__(self, vhost: str, queue: str) -> None:
        self.conn = amqp.Connection(
            f"{RABBIT_HOST}:5672", userid="guest", password="guest", virtual_host=vhost
        )
        self.conn.connect()
        channel = self.conn.channel()
        channel.queue_declare(queue, auto_delete=True)
        channel.basic_publish(amqp.Message(b"held"), routing_key=queue)
        self.held: list[Any] = []
        channel.basic_consume(queue, callback=self.held.append)
        wait_until("the canary's delivery", lambda: self._read() or self.held, timeout=10)
        self.closed_at: float | None = None

    def _read(self) -> bool:
        with contextlib.suppress(TimeoutError):
            self.conn.drain_events(timeout=0.01)
        return False

    def timed_out(self) -> bool:
        """True once the broker closed the canary's channel."""
        if self.closed_at is None:
            try:
                self._read()
            except amqp.exceptions.PreconditionFailed:
                self.closed_at = time.monotonic()
        return self.closed_at is not None


def test_the_leader_keeps_its_lease_past_the_consumer_timeout(
    short_timeout: ShortTimeout, rabbitmq_url: str, unique: str
) -> None:
    url = parse_broker_url(rabbitmq_url)
    leader = AMQPCoordinator(url, unique, FAST)
    standby = AMQPCoordinator(url, unique, FAST)
    canary: Canary | None = None
    try:
        with short_timeout.opening():
            assert wait_until("a leader", lambda: leader.refresh().leader, timeout=10)
            # Opened after the leader's token arrived: its delivery is the younger one.
            canary = Canary(url.vhost or "/", f"canary-{unique}")
        connection = leader._conn
        assert not standby.refresh().leader

        def steady() -> bool:
            assert leader.refresh().leader, "the leader lost its token"
            assert leader._conn is connection, "the leader's channel was closed and reopened"
            assert not standby.refresh().leader, "the standby took over"
            return True

        def broker_enforced() -> bool:
            # The broker closed the canary; one more round of channel ticks passes for the
            # leader's channel, which ticks on its own schedule.
            assert canary is not None
            steady()
            if not canary.timed_out() or canary.closed_at is None:
                return False
            return time.monotonic() - canary.closed_at > 3 * TICK_MS / 1000

        wait_until("the broker's timeout to pass", broker_enforced, timeout=TIMEOUT_MS / 100)
    finally:
        leader.release()
        standby.release()
        if canary is not None:
            with contextlib.suppress(Exception):
                canary.conn.close()
