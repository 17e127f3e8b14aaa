"""RabbitMQ memory and disk alarms as AMQP ``connection.blocked`` / ``connection.unblocked``.

RabbitMQ tells a connection it is blocked only once that connection publishes during an alarm,
so the watcher keeps its own connection on its own thread and publishes a tiny unroutable
message (default exchange, a routing key no queue binds) every ``canary_every`` seconds while
unblocked; the broker drops it. The notification then arrives within one canary interval.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

import amqp

from console.broker.amqp_connect import amqp_connection
from console.broker.errors import describe_error
from console.broker.urls import BrokerURL

CANARY_ROUTING_KEY = "sentry-console.alarm-canary"
CANARY_EVERY = 0.25
RECONNECT_AFTER = 2.0


class BlockedWatcher:
    """Watches one AMQP connection for blocked/unblocked notifications on a daemon thread."""

    def __init__(
        self,
        url: BrokerURL,
        *,
        timeout: float = 2.0,
        canary_every: float = CANARY_EVERY,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.canary_every = canary_every
        self.on_change = on_change
        self.canaries = 0
        self._lock = threading.Lock()
        self._blocked: str | None = None
        self._since: float | None = None
        self._error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def blocked(self) -> str | None:
        """RabbitMQ's reason while publishers are blocked, else None."""
        with self._lock:
            return self._blocked

    @property
    def blocked_since(self) -> float | None:
        """Wall-clock time the current block began."""
        with self._lock:
            return self._since

    @property
    def error(self) -> str | None:
        """Why the watcher's connection is down, if it is."""
        with self._lock:
            return self._error

    def start(self) -> None:
        """Start the watcher thread (once)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="amqp-blocked", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the thread and close its connection."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _set(self, blocked: str | None, error: str | None = None) -> None:
        with self._lock:
            changed = blocked != self._blocked
            self._blocked = blocked
            self._error = error
            if changed:
                self._since = time.time() if blocked else None
        if changed and self.on_change is not None:
            self.on_change()

    def _on_blocked(self, reason: Any = None) -> None:
        text = reason.decode() if isinstance(reason, bytes) else str(reason or "")
        self._set(text or "blocked by a resource alarm")

    def _on_unblocked(self) -> None:
        self._set(None)

    def _connect(self) -> amqp.Connection:
        conn = amqp_connection(
            self.url,
            self.timeout,
            on_blocked=self._on_blocked,
            on_unblocked=self._on_unblocked,
        )
        try:
            conn.connect()
        except BaseException:
            _close(conn)
            raise
        return conn

    def _run(self) -> None:
        while not self._stop.is_set():
            conn: amqp.Connection | None = None
            try:
                conn = self._connect()
                with self._lock:
                    self._error = None
                self._watch(conn)
            except Exception as exc:
                # A block belongs to the connection that was told: with it gone, what is known
                # is that the connection is down, not that an alarm still holds.
                self._set(None, describe_error(exc))
            finally:
                if conn is not None:
                    _close(conn)
            self._stop.wait(RECONNECT_AFTER)

    def _watch(self, conn: amqp.Connection) -> None:
        channel: Any = conn.channel()
        next_canary = 0.0
        # A new connection is not blocked until its first canary tells otherwise.
        self._set(None)
        while not self._stop.is_set():
            now = time.monotonic()
            if self.blocked is None and now >= next_canary:
                channel.basic_publish(
                    amqp.Message(b""), exchange="", routing_key=CANARY_ROUTING_KEY
                )
                self.canaries += 1
                next_canary = now + self.canary_every
            with contextlib.suppress(TimeoutError):
                conn.drain_events(timeout=min(self.canary_every, 0.1))


def _close(conn: amqp.Connection) -> None:
    with contextlib.suppress(Exception):
        conn.collect()


__all__ = ["CANARY_ROUTING_KEY", "BlockedWatcher"]
