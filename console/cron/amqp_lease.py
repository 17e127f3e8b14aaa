"""RabbitMQ lease: an exclusive queue held by the leader's connection, and slot record queues.

RabbitMQ deletes an exclusive queue the moment its connection closes: at once when the process
dies (the kernel closes the socket), after the heartbeat timeout when it is frozen or cut off.
The slot records are one-message queues (``x-max-length`` 1) that only the lock's own
connection writes, with publisher confirms: a confirmed record proves the broker still counted
that connection alive, hence the lock still ours, when it stored the slot. py-amqp never
reconnects by itself, so a connection the broker dropped stays dead: a frozen leader that wakes
gets an error on its first round trip instead of sending.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import amqp

from console.broker.urls import BrokerURL
from console.cron.lease import BrokerUnavailable, LeaseTiming, Refresh

# Connection-level failures and channel errors the broker answers with (not-found, locked).
_ERRORS = (
    OSError,
    amqp.exceptions.AMQPError,
    amqp.exceptions.RecoverableConnectionError,
    amqp.exceptions.MessageNacked,
)


class AMQPCoordinator:
    """Leader lock and slot records in a RabbitMQ vhost, named ``sentry-console.cron.<name>``."""

    def __init__(self, url: BrokerURL, name: str, timing: LeaseTiming) -> None:
        self._url = url
        self._timing = timing
        self._prefix = f"sentry-console.cron.{name}"
        self._conn: amqp.Connection | None = None
        self._channel: Any = None
        self._leader = False
        self._records: dict[str, float | None] = {}

    @property
    def _lock(self) -> str:
        return f"{self._prefix}.leader"

    def _record_queue(self, entry: str) -> str:
        return f"{self._prefix}.slot.{entry}"

    def _connect(self) -> Any:
        if self._conn is None:
            url = self._url
            host = (
                f"[{url.host}]:{url.port}" if ":" in (url.host or "") else f"{url.host}:{url.port}"
            )
            timeout = self._timing.io_timeout
            conn = amqp.Connection(
                host=host,
                userid=url.username or "guest",
                password=url.password or "",
                virtual_host=url.vhost or "/",
                ssl=url.tls,
                connect_timeout=timeout,
                read_timeout=timeout,
                write_timeout=timeout,
                heartbeat=self._timing.heartbeat,
            )
            self._conn = conn
            conn.connect()
        if self._channel is None or not self._channel.is_open:
            self._channel = self._conn.channel()
        return self._channel

    def _drop(self) -> None:
        conn, self._conn, self._channel = self._conn, None, None
        self._leader = False
        self._records.clear()
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.collect()

    def refresh(self) -> Refresh:
        """Confirm the lock (a round trip that fails on a dead connection) or try to take it."""
        try:
            return self._refresh()
        except BrokerUnavailable:
            # A connection the broker dropped (heartbeats missed while frozen) fails once; a
            # fresh one tells at once whether the broker is back and who holds the lock.
            return self._refresh()

    def _refresh(self) -> Refresh:
        try:
            channel = self._connect()
            if self._leader:
                channel.queue_declare(self._lock, passive=True)
                return Refresh(True)
            try:
                channel.queue_declare(self._lock, exclusive=True, auto_delete=False)
            except amqp.exceptions.ResourceLocked:
                self._channel = None  # the broker closed the channel with the error
                return Refresh(False)
            self._leader = True
            self._records.clear()
            return Refresh(True)
        except _ERRORS as exc:
            self._drop()
            raise BrokerUnavailable(type(exc).__name__) from None

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

    def claim(self, entry: str, slot: float) -> bool:
        """Publish the new record with a confirm on the lock's connection; True once confirmed."""
        if not self._leader:
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

    def release(self) -> None:
        """Close the connection: the broker deletes the lock queue with it."""
        if self._conn is not None and self._leader:
            with contextlib.suppress(Exception):
                self._channel.queue_delete(self._lock)
        self._drop()
