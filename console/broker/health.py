"""Broker connection health: state, round-trip time, server version, reconnects."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from console.broker.amqp_connect import amqp_connection
from console.broker.errors import describe_error
from console.broker.models import BrokerHealth, HealthState
from console.broker.urls import BrokerURL

log = logging.getLogger("sentry_console.broker")


class _RedisSession:
    """One Redis connection: PING for the round trip, INFO server for the version."""

    def __init__(self, url: BrokerURL, timeout: float) -> None:
        self._client = redis.Redis.from_url(
            url.to_redis_py_url(),
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            single_connection_client=True,
        )
        try:
            info = self._client.info("server")
        except BaseException:
            self.close()
            raise
        self.version: str | None = str(info.get("redis_version")) if info else None

    def round_trip(self) -> None:
        """Send PING and wait for PONG."""
        self._client.ping()

    def close(self) -> None:
        """Close the connection."""
        with contextlib.suppress(Exception):
            self._client.close()


class _AMQPSession:
    """One AMQP connection and channel: basic.qos/qos-ok for the round trip."""

    def __init__(self, url: BrokerURL, timeout: float) -> None:
        self._conn = amqp_connection(url, timeout)
        try:
            self._conn.connect()
            self._channel: Any = self._conn.channel()
        except BaseException:
            self.close()
            raise
        props = self._conn.server_properties or {}
        raw = props.get("version")
        self.version = raw.decode() if isinstance(raw, bytes) else (str(raw) if raw else None)

    def round_trip(self) -> None:
        """A synchronous no-op method (basic.qos with no limits) answered by qos-ok."""
        self._channel.basic_qos(0, 0, False)

    def close(self) -> None:
        """Close the connection."""
        with contextlib.suppress(Exception):
            self._conn.close()
        with contextlib.suppress(Exception):
            self._conn.collect()


class BrokerHealthProbe:
    """Keeps one broker connection and reports its health; re-establishes it after failure."""

    def __init__(
        self,
        url: BrokerURL,
        *,
        timeout: float = 2.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = url
        self.timeout = timeout
        self._clock = clock
        self._session: _RedisSession | _AMQPSession | None = None
        self._ever_connected = False
        self._reconnects = 0
        self._last_ok: float | None = None
        self._version: str | None = None
        self.last: BrokerHealth = BrokerHealth("connecting", None, None, None, 0, None)

    def _open(self, timeout: float) -> _RedisSession | _AMQPSession:
        session: _RedisSession | _AMQPSession
        if self.url.kind == "redis":
            session = _RedisSession(self.url, timeout)
        else:
            session = _AMQPSession(self.url, timeout)
        if self._ever_connected:
            self._reconnects += 1
        self._ever_connected = True
        self._version = session.version
        return session

    def _measure(self, session: _RedisSession | _AMQPSession) -> float:
        started = time.perf_counter()
        session.round_trip()
        return (time.perf_counter() - started) * 1000.0

    def check(self) -> BrokerHealth:
        """Connect if needed and time one round trip; blocking, bounded by timeout, never raises."""
        deadline = time.monotonic() + self.timeout
        reused = self._session is not None
        try:
            try:
                session = self._session or self._open(self.timeout)
                self._session = session
                rtt = self._measure(session)
            except Exception:
                self._discard()
                remaining = deadline - time.monotonic()
                if not reused or remaining < 0.05:
                    raise
                # A connection that went stale since the last check: try one fresh one.
                session = self._open(remaining)
                self._session = session
                rtt = self._measure(session)
        except Exception as exc:
            self._discard()
            reason = describe_error(exc)
            if self.last.state != "down" or self.last.reason != reason:
                log.warning("broker %s down: %s", self.url.redacted, reason)
            self.last = BrokerHealth(
                "down", reason, None, self._version, self._reconnects, self._last_ok
            )
            return self.last
        self._last_ok = self._clock()
        if self.last.state != "connected":
            log.info("broker %s connected (server %s)", self.url.redacted, self._version or "?")
        self.last = BrokerHealth(
            "connected", None, round(rtt, 3), self._version, self._reconnects, self._last_ok
        )
        return self.last

    def lost(self, reason: str) -> BrokerHealth:
        """Record that the broker stopped answering another probe since this one's check."""
        self._discard()
        if self.last.state != "down":
            log.warning("broker %s down: %s", self.url.redacted, reason)
        self.last = BrokerHealth(
            "down", reason, None, self._version, self._reconnects, self._last_ok
        )
        return self.last

    def _discard(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            session.close()

    def close(self) -> None:
        """Close the connection."""
        self._discard()


__all__ = ["BrokerHealth", "BrokerHealthProbe", "HealthState"]
