"""RabbitMQ lease: a token in a single-active-consumer queue, and slot record queues.

Every cron consumes the lock queue (``x-single-active-consumer``); RabbitMQ delivers to one
consumer at a time, and a token message held unacked by it marks the leader. When the leader's
connection closes (at once when the process dies, after the heartbeat timeout when it is
frozen or cut off) the broker requeues the token and hands it to the next consumer. Standbys
only wait: no polling, no failed declares filling the broker's log.

The leader never holds one token for long: RabbitMQ closes a channel that keeps a delivery
unacked past ``consumer_timeout`` (30 minutes by default), which would hand the lease over on a
healthy system. So the leader publishes a fresh token every ``LeaseTiming.token_refresh`` seconds;
being the single active consumer, it receives that token itself and acks the older one, so its
oldest unacked delivery is always younger than the refresh interval. (RabbitMQ 3.12's per-queue
``x-consumer-timeout`` argument is not used: the argument would make the declaration of a lock
queue made by an earlier version fail as inequivalent, and older brokers ignore it.)

The slot records are one-message queues (``x-max-length`` 1) that only the token holder's own
connection writes, with publisher confirms: a confirmed record proves the broker still counted
that connection alive, hence the token still ours, when it stored the slot. py-amqp never
reconnects by itself, so a connection the broker dropped stays dead: a frozen leader that wakes
gets an error on its first round trip instead of sending.
"""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

import amqp

from console.broker.amqp_connect import amqp_connection
from console.broker.urls import BrokerURL
from console.cron.lease import BrokerUnavailable, LeaseTiming, Refresh

# Connection-level failures and channel errors the broker answers with (not-found, locked).
_ERRORS = (
    OSError,
    amqp.exceptions.AMQPError,
    amqp.exceptions.RecoverableConnectionError,
    amqp.exceptions.MessageNacked,
)
LOCK_ARGS = {"x-single-active-consumer": True, "x-max-length": 1}


class AMQPCoordinator:
    """Leader lock and slot records in a RabbitMQ vhost, named ``sentry-console.cron.<name>``."""

    def __init__(self, url: BrokerURL, name: str, timing: LeaseTiming, schedule: str = "") -> None:
        self._url = url
        self._timing = timing
        self._body = schedule.encode() or b"token"
        """Every token this cron publishes carries its schedule's digest."""
        self._foreign: str | None = None
        self._prefix = f"sentry-console.cron.{name}"
        self._conn: amqp.Connection | None = None
        self._channel: Any = None
        self._token: int | None = None
        self._token_at = 0.0
        """When the held token arrived (monotonic): it is refreshed before it gets old."""
        self._records: dict[str, float | None] = {}

    @property
    def _lock(self) -> str:
        return f"{self._prefix}.leader"

    def _record_queue(self, entry: str) -> str:
        return f"{self._prefix}.slot.{entry}"

    def _connect(self) -> Any:
        if self._conn is None:
            url = self._url
            conn = amqp_connection(url, self._timing.io_timeout, heartbeat=self._timing.heartbeat)
            self._conn = conn
            conn.connect()
            channel = conn.channel()
            self._channel = channel
            channel.queue_declare(self._lock, durable=True, auto_delete=False, arguments=LOCK_ARGS)
            # Every newcomer adds a token, so one exists even on a fresh broker; the leader
            # keeps one and acks the others away, and the length limit bounds idle ones.
            token = amqp.Message(self._body, delivery_mode=2)
            channel.basic_publish(token, exchange="", routing_key=self._lock)
            channel.basic_consume(self._lock, callback=self._on_token)
            # A token for a lone consumer arrives within a round trip: wait that long once, so
            # a cron that can lead says so on its first check.
            with contextlib.suppress(TimeoutError):
                conn.drain_events(timeout=self._timing.io_timeout / 4)
        return self._channel

    def _on_token(self, message: Any) -> None:
        body = bytes(message.body)
        if body not in (self._body, b"token"):
            self._foreign = body.decode(errors="replace")  # a cron with another schedule
        if self._token is None:
            self._records.clear()
        else:
            # Any token marks the leader: keep the newest, so no delivery stays unacked for long.
            message.channel.basic_ack(self._token)
        self._token = message.delivery_tag
        self._token_at = time.monotonic()

    def _refresh_token(self) -> None:
        """Leader: publish a fresh token once the held one is due; it comes back to us."""
        if self._token is None or self._channel is None:
            return
        if time.monotonic() - self._token_at < self._timing.token_refresh:
            return
        token = amqp.Message(self._body, delivery_mode=2)
        self._channel.basic_publish(token, exchange="", routing_key=self._lock)
        self._token_at = time.monotonic()  # not again before the interval, even if it is late

    def _drop(self) -> None:
        conn, self._conn, self._channel = self._conn, None, None
        self._token = None
        self._records.clear()
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.collect()

    def refresh(self) -> Refresh:
        """Read what the broker sent (a token, heartbeats) and send heartbeats; never blocks."""
        try:
            return self._refresh()
        except BrokerUnavailable:
            # A connection the broker dropped (heartbeats missed while frozen) fails once; a
            # fresh one tells at once whether the broker is back.
            return self._refresh()

    def _refresh(self) -> Refresh:
        try:
            self._connect()
            assert self._conn is not None
            self._refresh_token()
            for _ in range(100):
                try:
                    self._conn.drain_events(timeout=0.01)
                except TimeoutError:
                    break
            self._conn.heartbeat_tick(rate=4)
        except _ERRORS as exc:
            self._drop()
            raise BrokerUnavailable(type(exc).__name__) from None
        foreign, self._foreign = self._foreign, None
        return Refresh(self._token is not None, schedule=foreign)

    def last_slot(self, entry: str) -> float | None:
        """The slot recorded for ``entry``, read once per leadership."""
        if entry in self._records:
            return self._records[entry]
        queue = self._record_queue(entry)
        try:
            channel = self._connect()
            channel.queue_declare(
                queue, durable=True, auto_delete=False, arguments={"x-max-length": 1}
            )
            message = channel.basic_get(queue, no_ack=False)
            last = None
            if message is not None:
                last = float(json.loads(message.body)["slot"])
                channel.basic_reject(message.delivery_tag, requeue=True)
        except (*_ERRORS, ValueError, KeyError, TypeError) as exc:
            self._drop()
            raise BrokerUnavailable(type(exc).__name__) from None
        self._records[entry] = last
        return last

    def claim(self, entry: str, slot: float, keep: float = 0.0) -> bool:
        """Publish the new record with a confirm on the lock's connection; True once confirmed.

        ``keep`` is not used: a record queue is never evicted and holds one message.
        """
        if self._token is None:
            return False
        last = self.last_slot(entry)
        if last is not None and last >= slot:
            return False
        body = json.dumps({"slot": slot})
        try:
            self._channel.basic_publish_confirm(
                amqp.Message(body, delivery_mode=2, content_type="application/json"),
                exchange="",
                routing_key=self._record_queue(entry),
                confirm_timeout=self._timing.io_timeout,
            )
        except (*_ERRORS, AttributeError) as exc:
            self._drop()
            raise BrokerUnavailable(type(exc).__name__) from None
        self._records[entry] = slot
        return True

    def wait(self, seconds: float) -> None:
        """Block reading the connection until the token comes, at most ``seconds``."""
        if self._conn is None or self._token is not None:
            time.sleep(seconds)
            return
        deadline = time.monotonic() + seconds
        try:
            while self._token is None and (left := deadline - time.monotonic()) > 0:
                with contextlib.suppress(TimeoutError):
                    self._conn.drain_events(timeout=min(left, self._timing.heartbeat / 2))
                self._conn.heartbeat_tick(rate=4)
        except _ERRORS:
            self._drop()

    def release(self) -> None:
        """Close the connection: the broker gives the token to the next consumer at once."""
        self._drop()
