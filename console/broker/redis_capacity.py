"""Redis capacity in one pipelined round trip: memory, evictions, unacked work, bytes per queue.

kombu keeps every delivered, unacknowledged message in the ``unacked`` hash (delivery tag ->
``[message, exchange, routing_key]``) and its delivery time in the ``unacked_index`` sorted set,
both under ``global_keyprefix``. Every read is bounded whatever their size: the hash's length,
at most ``UNACKED_DETAIL_LIMIT + 1`` tags from the index (a range read, never HKEYS), and the
payloads of at most ``UNACKED_READS_PER_POLL`` tags not seen before. A message older than
``visibility_timeout`` there is delivered again by the next worker that restores unacked work:
a sign of a dead or stuck worker.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from console.broker.capacity import (
    BrokerCapacity,
    BrokerMemory,
    CapacityWarning,
    MemoryTrend,
    QueueCapacity,
    memory_warnings,
)
from console.broker.depth import KOMBU_PRIORITY_SEP, KOMBU_PRIORITY_STEPS, redis_queue_keys
from console.broker.errors import BrokerUnavailable, describe_error
from console.broker.urls import BrokerURL

KOMBU_VISIBILITY_TIMEOUT = 3600.0
#: Above this many unacked deliveries only the totals are counted (no per-queue breakdown).
UNACKED_DETAIL_LIMIT = 5000
#: Unacked payloads read per poll to learn the queue of new delivery tags.
UNACKED_READS_PER_POLL = 500
#: Elements ``MEMORY USAGE`` samples per list.
MEMORY_SAMPLES = 5
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")

Routes = Mapping[tuple[str, str], str]
"""(exchange, routing key) -> queue name, for the app's queues."""


def host_memory() -> int | None:
    """This machine's physical memory in bytes, if the OS tells."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def queue_of(routes: Routes, names: Sequence[str], exchange: str, routing_key: str) -> str | None:
    """The queue a delivery came from, as far as the app's routes tell."""
    queue = routes.get((exchange, routing_key))
    if queue is None and routing_key in names:
        queue = routing_key
    return queue


class RedisCapacityProbe:
    """Reads Redis memory, evictions, unacked deliveries and per-queue bytes; keeps their trend."""

    def __init__(
        self,
        url: BrokerURL,
        transport_options: Mapping[str, Any] | None = None,
        routes: Routes | None = None,
        *,
        timeout: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        options = dict(transport_options or {})
        prefix = str(options.get("global_keyprefix") or "")
        self.priority_steps = tuple(options.get("priority_steps") or KOMBU_PRIORITY_STEPS)
        self.sep = str(options.get("sep", KOMBU_PRIORITY_SEP))
        self.prefix = prefix
        self.unacked_key = prefix + str(options.get("unacked_key", "unacked"))
        self.index_key = prefix + str(options.get("unacked_index_key", "unacked_index"))
        self.visibility_timeout = float(
            options.get("visibility_timeout") or KOMBU_VISIBILITY_TIMEOUT
        )
        self.routes: Routes = dict(routes or {})
        self.local = url.is_socket or (url.host or "") in LOCAL_HOSTS
        self.round_trips = 0
        self._clock = clock
        self._trend = MemoryTrend()
        self._evicted_at_start: int | None = None
        self._tag_queue: dict[str, str | None] = {}
        self._detail = True
        self._client = redis.Redis.from_url(
            url.to_redis_py_url(),
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )

    def poll(self, queues: Sequence[str]) -> BrokerCapacity:
        """One reading; raises BrokerUnavailable when Redis does not answer."""
        names = list(dict.fromkeys(queues))
        keys = {
            name: redis_queue_keys(
                name, priority_steps=self.priority_steps, sep=self.sep, global_keyprefix=self.prefix
            )
            for name in names
        }
        now = self._clock()
        cutoff = now - self.visibility_timeout
        detail = self._detail
        pipe = self._client.pipeline(transaction=False)
        pipe.info("memory")
        pipe.info("stats")
        pipe.hlen(self.unacked_key)
        pipe.zcount(self.index_key, "-inf", cutoff)
        if detail:
            # The tags from the index, at most one past the limit: HKEYS on the hash would read
            # all of it, however large, before the HLEN beside it could say it is too large.
            pipe.zrange(self.index_key, 0, UNACKED_DETAIL_LIMIT)
            pipe.zrangebyscore(self.index_key, "-inf", cutoff, start=0, num=UNACKED_DETAIL_LIMIT)
        for name in names:
            for key in keys[name]:
                pipe.memory_usage(key, samples=MEMORY_SAMPLES)
        try:
            replies = self._execute(pipe)
            it = iter(replies)
            memory_info, stats, unacked, overdue = (next(it) for _ in range(4))
            stats = {} if _refused(stats) else stats
            if detail:
                tag_reply, overdue_reply = next(it), next(it)
                detail = not (_refused(tag_reply) or _refused(overdue_reply))
                detail = detail and len(tag_reply) <= UNACKED_DETAIL_LIMIT
            tags = [_text(t) for t in tag_reply] if detail else []
            overdue_tags = {_text(t) for t in overdue_reply} if detail else set()
            sizes = {name: _sum_sizes(next(it) for _ in keys[name]) for name in names}
            per_queue = self._unacked_by_queue(tags, names) if detail else {}
        except (redis.RedisError, OSError) as exc:
            self._client.connection_pool.disconnect()
            raise BrokerUnavailable(f"Redis is unavailable: {describe_error(exc)}") from None
        unacked, overdue = _int(unacked), _int(overdue)
        self._detail = unacked is not None and unacked <= UNACKED_DETAIL_LIMIT
        memory = self._memory(memory_info, stats, now)
        rows = []
        for name in names:
            counted = [t for t in tags if per_queue.get(t) == name]
            rows.append(
                QueueCapacity(
                    name,
                    bytes=sizes[name],
                    unacked=len(counted) if detail else None,
                    overdue=sum(1 for t in counted if t in overdue_tags) if detail else None,
                )
            )
        warnings = memory_warnings(memory)
        warnings[:0] = self._eviction_warnings(memory.evicted_keys)
        if overdue:
            warnings.append(
                CapacityWarning(
                    "unacked-overdue",
                    f"{overdue} unacked tasks are older than the visibility timeout "
                    f"({self.visibility_timeout:.0f}s): they will run again; "
                    "look for dead or stuck workers",
                )
            )
        return BrokerCapacity(
            memory=memory,
            queues=tuple(rows),
            unacked=unacked,
            overdue=overdue,
            visibility_timeout=self.visibility_timeout,
            warnings=tuple(warnings),
        )

    def _execute(self, pipe: Any) -> list[Any]:
        """Run the pipeline; a command an old or restricted Redis refuses reads as unknown.

        Refused commands stay in the replies as exceptions; INFO is the one reply the reading
        cannot do without, so its refusal is raised.
        """
        self.round_trips += 1
        replies = list(pipe.execute(raise_on_error=False))
        if isinstance(replies[0], Exception):
            raise replies[0]
        return replies

    def _memory(
        self, info: Mapping[str, Any], stats: Mapping[str, Any], now: float
    ) -> BrokerMemory:
        used = int(info.get("used_memory") or 0)
        maxmemory = int(info.get("maxmemory") or 0)
        limit: int | None = maxmemory or None
        source: Any = "maxmemory" if maxmemory else None
        if not maxmemory and self.local:
            limit = int(info.get("total_system_memory") or 0) or host_memory()
            source = "host" if limit else None
        rate = self._trend.add(now, used)
        evicted = stats.get("evicted_keys")
        return BrokerMemory(
            used=used,
            peak=_int(info.get("used_memory_peak")),
            limit=limit,
            limit_source=source,
            policy=str(info.get("maxmemory_policy") or "") or None,
            growth_per_second=rate,
            seconds_to_full=MemoryTrend.seconds_to_full(used, limit, rate),
            evicted_keys=_int(evicted),
        )

    def _eviction_warnings(self, evicted: int | None) -> list[CapacityWarning]:
        if evicted is None:
            return []
        if self._evicted_at_start is None or evicted < self._evicted_at_start:
            self._evicted_at_start = evicted  # first reading, or the stats were reset
        since = evicted - self._evicted_at_start
        if since > 0:
            return [
                CapacityWarning(
                    "keys-evicted",
                    f"Redis evicted {since} keys while the console watched: queued tasks may "
                    "be lost; set maxmemory-policy noeviction and free memory",
                    "alarm",
                )
            ]
        if evicted:
            return [
                CapacityWarning(
                    "keys-evicted-before",
                    f"Redis has evicted {evicted} keys since its statistics were reset",
                )
            ]
        return []

    def _unacked_by_queue(self, tags: list[str], names: list[str]) -> dict[str, str | None]:
        """Delivery tag -> queue, reading the payloads of tags not seen before (bounded)."""
        known = self._tag_queue
        live = set(tags)
        for gone in [t for t in known if t not in live]:
            del known[gone]
        new = [t for t in tags if t not in known][:UNACKED_READS_PER_POLL]
        if new:
            self.round_trips += 1
            for tag, raw in zip(new, self._client.hmget(self.unacked_key, new), strict=True):
                known[tag] = self._payload_queue(raw, names)
        return known

    def _payload_queue(self, raw: bytes | str | None, names: list[str]) -> str | None:
        if raw is None:
            return None
        try:
            _, exchange, routing_key = json.loads(raw)
        except (ValueError, TypeError):
            return None
        return queue_of(self.routes, names, str(exchange or ""), str(routing_key or ""))

    def close(self) -> None:
        """Close the connection pool."""
        with contextlib.suppress(redis.RedisError, OSError):
            self._client.close()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _refused(reply: object) -> bool:
    return isinstance(reply, Exception)


def _int(value: object) -> int | None:
    if value is None or _refused(value):
        return None
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None


def _sum_sizes(sizes: Any) -> int | None:
    """Bytes of a queue's lists (an absent list is 0); None when MEMORY USAGE was refused."""
    replies = list(sizes)
    if any(_refused(r) for r in replies):
        return None
    return sum(int(r) for r in replies if r is not None)


def app_routes(app: Any) -> dict[tuple[str, str], str]:
    """(exchange, routing key) -> queue for a Celery app's declared queues (duck-typed)."""
    routes: dict[tuple[str, str], str] = {}
    for queue in app.conf.task_queues or ():
        name = getattr(queue, "name", None)
        if not name:
            continue
        exchange = getattr(getattr(queue, "exchange", None), "name", None) or ""
        key = getattr(queue, "routing_key", None) or name
        routes.setdefault((exchange, key), name)
    default = app.conf.task_default_queue or "celery"
    routes.setdefault((app.conf.task_default_exchange or default, default), default)
    return routes


__all__ = ["RedisCapacityProbe", "app_routes", "host_memory", "queue_of"]
