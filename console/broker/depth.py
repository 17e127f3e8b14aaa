"""Exact, cheap queue depth for Redis (all priority sub-queues, key prefix) and RabbitMQ."""

from __future__ import annotations

import contextlib
from bisect import bisect
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import amqp
import amqp.exceptions
import redis
from amqp import spec
from redis.backoff import NoBackoff
from redis.retry import Retry

from console.broker.amqp_connect import amqp_connection
from console.broker.errors import BrokerUnavailable, describe_error
from console.broker.models import QueueDepth
from console.broker.urls import BrokerURL

# kombu.transport.redis defaults; kept here so the probe needs no kombu channel.
KOMBU_PRIORITY_STEPS = (0, 3, 6, 9)
KOMBU_PRIORITY_SEP = "\x06\x16"


class QueueDepthProbe(Protocol):
    """Polls the depth of many queues in as few round trips as the broker allows."""

    round_trips: int

    def poll(self, queues: Sequence[str]) -> dict[str, QueueDepth]:
        """Depth of each named queue; raises BrokerUnavailable when the broker is unreachable."""
        ...

    def close(self) -> None:
        """Release the connection."""
        ...


def redis_queue_keys(
    queue: str,
    *,
    priority_steps: Sequence[int] = KOMBU_PRIORITY_STEPS,
    sep: str = KOMBU_PRIORITY_SEP,
    global_keyprefix: str = "",
) -> list[str]:
    """The Redis list keys kombu uses for ``queue``, one per priority step, as kombu names them."""
    steps = list(priority_steps)
    keys: list[str] = []
    for pri in steps:
        step = steps[bisect(steps, pri) - 1]  # kombu Channel.priority()
        key = f"{queue}{sep}{step}" if step else queue
        full = global_keyprefix + key
        if full not in keys:
            keys.append(full)
    return keys


class RedisDepthProbe:
    """Sums LLEN over every priority sub-queue of every queue in one pipelined round trip."""

    def __init__(
        self,
        url: BrokerURL,
        transport_options: Mapping[str, Any] | None = None,
        *,
        timeout: float = 3.0,
    ) -> None:
        options = dict(transport_options or {})
        self.priority_steps: tuple[int, ...] = tuple(
            options.get("priority_steps") or KOMBU_PRIORITY_STEPS
        )
        self.sep: str = str(options.get("sep", KOMBU_PRIORITY_SEP))
        self.global_keyprefix: str = str(options.get("global_keyprefix") or "")
        self.round_trips = 0
        self._url = url
        self._client = redis.Redis.from_url(
            url.to_redis_py_url(),
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )

    def keys_for(self, queue: str) -> list[str]:
        """The list keys counted for ``queue``."""
        return redis_queue_keys(
            queue,
            priority_steps=self.priority_steps,
            sep=self.sep,
            global_keyprefix=self.global_keyprefix,
        )

    def poll(self, queues: Sequence[str]) -> dict[str, QueueDepth]:
        """Depth of each queue; an absent Redis list is an empty queue."""
        names = list(dict.fromkeys(queues))
        if not names:
            return {}
        plan = [(name, self.keys_for(name)) for name in names]
        pipe = self._client.pipeline(transaction=False)
        for _, keys in plan:
            for key in keys:
                pipe.llen(key)
        try:
            self.round_trips += 1
            sizes = pipe.execute()
        except (redis.RedisError, OSError) as exc:
            self._client.connection_pool.disconnect()
            reason = describe_error(exc)
            raise BrokerUnavailable(f"Redis is unavailable: {reason}", reason) from None
        result: dict[str, QueueDepth] = {}
        it = iter(sizes)
        for name, keys in plan:
            ready = sum(int(next(it)) for _ in keys)
            result[name] = QueueDepth(name, ready, None, None, exists=True)
        return result

    def close(self) -> None:
        """Close the connection pool."""
        with contextlib.suppress(redis.RedisError, OSError):
            self._client.close()


class AMQPDepthProbe:
    """Passive queue.declare for each queue on one channel, pipelined: ready + consumers."""

    def __init__(self, url: BrokerURL, *, timeout: float = 3.0) -> None:
        self.round_trips = 0
        self._url = url
        self._timeout = timeout
        self._conn: amqp.Connection | None = None
        self._channel: Any = None

    def _connect(self) -> Any:
        if self._conn is not None and self._channel is not None and self._channel.is_open:
            return self._channel
        self._drop()
        conn = amqp_connection(self._url, self._timeout)
        self._conn = conn
        conn.connect()
        self._channel = conn.channel()
        self.round_trips += 2
        return self._channel

    def _drop(self) -> None:
        conn, self._conn, self._channel = self._conn, None, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.collect()

    def poll(self, queues: Sequence[str]) -> dict[str, QueueDepth]:
        """Depth of each queue; a missing queue is exists=False, not an error."""
        names = list(dict.fromkeys(queues))
        result: dict[str, QueueDepth] = {}
        try:
            pending = names
            while pending:
                pending = self._poll_batch(pending, result)
        except (OSError, amqp.exceptions.AMQPError) as exc:
            self._drop()
            reason = describe_error(exc)
            raise BrokerUnavailable(f"RabbitMQ is unavailable: {reason}", reason) from None
        return {name: result[name] for name in names}

    def _poll_batch(self, names: list[str], result: dict[str, QueueDepth]) -> list[str]:
        """Send every passive declare, then read the replies; return the names still to ask."""
        channel = self._connect()
        for name in names:
            channel.send_method(
                spec.Queue.Declare, "BsbbbbbF", (0, name, True, False, False, False, False, None)
            )
        self.round_trips += 1
        for index, name in enumerate(names):
            try:
                _, ready, consumers = channel.wait(spec.Queue.DeclareOk, returns_tuple=True)
            except amqp.exceptions.NotFound:
                # The broker closed the channel (py-amqp has reopened it) and dropped the
                # declares sent after this one: report this queue missing, ask the rest again.
                result[name] = QueueDepth(name, None, None, None, exists=False)
                self.round_trips += 1
                if not channel.is_open:
                    self._channel = None
                return names[index + 1 :]
            result[name] = QueueDepth(name, int(ready), int(consumers), None, exists=True)
        return []

    def close(self) -> None:
        """Close the connection."""
        conn, self._conn, self._channel = self._conn, None, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()
            with contextlib.suppress(Exception):
                conn.collect()


def make_depth_probe(
    url: BrokerURL,
    transport_options: Mapping[str, Any] | None = None,
    *,
    timeout: float = 3.0,
) -> QueueDepthProbe:
    """A depth probe for the broker ``url`` names (kombu transport_options apply to Redis)."""
    if url.kind == "redis":
        return RedisDepthProbe(url, transport_options, timeout=timeout)
    return AMQPDepthProbe(url, timeout=timeout)


__all__ = [
    "AMQPDepthProbe",
    "BrokerUnavailable",
    "QueueDepth",
    "QueueDepthProbe",
    "RedisDepthProbe",
    "make_depth_probe",
    "redis_queue_keys",
]
