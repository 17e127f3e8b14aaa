"""Broker capacity: memory against its limit, growth, eviction and alarm warnings, per-queue load.

The figures come from :mod:`console.broker.redis_capacity` (Redis), from the AMQP
``connection.blocked`` watcher and the management API (RabbitMQ); this module holds the shapes
they share, the growth trend and the JSON form ``status --json`` prints.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any, Literal

LimitSource = Literal["maxmemory", "host", "watermark"]
Level = Literal["warning", "alarm"]

#: Seconds of memory samples the growth rate is measured over.
GROWTH_WINDOW = 20.0
#: Share of the limit above which memory use is a warning.
HIGH_MEMORY = 0.9
#: A time until full shorter than this is a warning.
FULL_SOON = 15 * 60.0
#: The farthest time until full worth showing: growth over a 20 s window says nothing about
#: next month, and an idle broker's noise would show (and hide) "full in 128d" every few seconds.
FULL_HORIZON = 86_400.0


@dataclass(frozen=True)
class CapacityWarning:
    """Something the operator should act on; ``code`` is stable, ``message`` says what to do."""

    code: str
    message: str
    level: Level = "warning"


@dataclass(frozen=True)
class BrokerMemory:
    """Broker memory in bytes against the limit that applies (``limit_source`` says which)."""

    used: int | None
    peak: int | None = None
    limit: int | None = None
    limit_source: LimitSource | None = None
    policy: str | None = None
    growth_per_second: float | None = None
    """Bytes per second over the last ``GROWTH_WINDOW`` seconds (negative: shrinking)."""
    seconds_to_full: float | None = None
    """At the current growth rate; None when not growing or no limit is known."""
    evicted_keys: int | None = None

    @property
    def fraction(self) -> float | None:
        """Used / limit, when both are known."""
        if self.used is None or not self.limit:
            return None
        return self.used / self.limit


@dataclass(frozen=True)
class QueueCapacity:
    """One queue's share of the broker: bytes, unacked and overdue deliveries, oldest message."""

    name: str
    bytes: int | None = None
    unacked: int | None = None
    overdue: int | None = None
    """Unacked deliveries older than the visibility timeout: they will be delivered again."""
    oldest_age: float | None = None
    """Seconds the oldest waiting message has waited, where the broker tells cheaply."""
    publish_rate: float | None = None
    deliver_rate: float | None = None


@dataclass(frozen=True)
class BrokerCapacity:
    """One capacity reading for the whole broker."""

    memory: BrokerMemory | None = None
    queues: tuple[QueueCapacity, ...] = ()
    unacked: int | None = None
    overdue: int | None = None
    visibility_timeout: float | None = None
    blocked: str | None = None
    """RabbitMQ's reason for blocking publishers (memory or disk alarm), None when not blocked."""
    warnings: tuple[CapacityWarning, ...] = ()
    notes: tuple[str, ...] = ()
    """Facts worth one line that are not warnings (e.g. the management API is not reachable)."""

    def queue(self, name: str) -> QueueCapacity | None:
        """The figures of one queue, if any."""
        return next((q for q in self.queues if q.name == name), None)


@dataclass
class MemoryTrend:
    """Memory samples over a sliding window, turned into a growth rate and a time until full."""

    window: float = GROWTH_WINDOW
    _samples: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=512))

    def add(self, now: float, used: int) -> float | None:
        """Record one sample; return bytes per second over the window (None: too few samples)."""
        samples = self._samples
        samples.append((now, used))
        while len(samples) > 2 and now - samples[1][0] >= self.window:
            samples.popleft()
        first_t, first_used = samples[0]
        if now - first_t < 1.0:
            return None
        return (used - first_used) / (now - first_t)

    @staticmethod
    def seconds_to_full(used: int, limit: int | None, rate: float | None) -> float | None:
        """Seconds until ``used`` reaches ``limit`` at ``rate`` (0 when already there); None
        when not growing, or farther than :data:`FULL_HORIZON`."""
        if not limit or rate is None:
            return None
        if used >= limit:
            return 0.0
        eta = (limit - used) / rate if rate > 0 else None
        return eta if eta is not None and eta <= FULL_HORIZON else None


CRON_KEYS = "sentry-console:cron:*"
"""The Redis keys of the cron lease (``console.cron.redis_lease.KEY_PREFIX``), for warnings."""


def memory_warnings(memory: BrokerMemory) -> list[CapacityWarning]:
    """Warnings about the memory figures alone (eviction policy, high use, filling up)."""
    out: list[CapacityWarning] = []
    limited = memory.limit_source == "maxmemory" and bool(memory.limit)
    if limited and memory.policy and memory.policy != "noeviction":
        if memory.policy.startswith("volatile"):  # only keys with a TTL: the cron's own
            what = f"the cron keys ({CRON_KEYS}, which expire)"
        else:
            what = f"queued tasks and the cron keys ({CRON_KEYS})"
        out.append(
            CapacityWarning(
                "eviction-policy",
                f"maxmemory-policy {memory.policy} can evict {what} at maxmemory: use noeviction",
                "alarm",
            )
        )
    fraction = memory.fraction
    if fraction is not None and fraction >= HIGH_MEMORY:
        where = {"maxmemory": "maxmemory", "host": "host memory", "watermark": "the watermark"}
        limit = where.get(memory.limit_source or "", "the limit")
        out.append(
            CapacityWarning(
                "memory-high",
                f"memory at {fraction:.0%} of {limit}: drain queues or raise the limit",
            )
        )
    eta = memory.seconds_to_full
    if eta is not None and eta < FULL_SOON and (fraction is None or fraction < 1):
        out.append(
            CapacityWarning(
                "memory-full-soon",
                f"memory full in {eta:.0f}s at this growth: add workers or slow producers",
            )
        )
    return out


def memory_json(memory: BrokerMemory | None) -> dict[str, Any] | None:
    """``broker.memory`` as ``status --json`` prints it."""
    if memory is None:
        return None
    return {
        "used": memory.used,
        "peak": memory.peak,
        "max": memory.limit,
        "limit_source": memory.limit_source,
        "policy": memory.policy,
        "growth_bytes_per_second": (
            None if memory.growth_per_second is None else round(memory.growth_per_second, 1)
        ),
        "seconds_to_full": (
            None if memory.seconds_to_full is None else round(memory.seconds_to_full, 1)
        ),
        "evicted_keys": memory.evicted_keys,
    }


def warnings_json(capacity: BrokerCapacity | None) -> list[dict[str, str]]:
    """``broker.warnings`` as ``status --json`` prints it."""
    if capacity is None:
        return []
    return [{"code": w.code, "message": w.message, "level": w.level} for w in capacity.warnings]


def with_warning(capacity: BrokerCapacity, warning: CapacityWarning) -> BrokerCapacity:
    """``capacity`` with one more warning (first, if it is an alarm)."""
    if warning.level == "alarm":
        return replace(capacity, warnings=(warning, *capacity.warnings))
    return replace(capacity, warnings=(*capacity.warnings, warning))


__all__ = [
    "BrokerCapacity",
    "BrokerMemory",
    "CapacityWarning",
    "MemoryTrend",
    "QueueCapacity",
    "memory_json",
    "memory_warnings",
    "warnings_json",
    "with_warning",
]
