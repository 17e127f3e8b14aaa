"""Redis lease: ``SET NX PX`` with a fencing term, renewed and used by compare-and-set scripts.

Slot records expire (``record_ttl``: far beyond their schedule's interval, so only a removed
entry's record goes); each claim sets the TTL afresh.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from console.broker.urls import BrokerURL
from console.cron.lease import BrokerUnavailable, LeaseTiming, Refresh, owner_id
from console.cron.slots import RECORD_TTL_FLOOR

KEY_PREFIX = "sentry-console:cron:"
"""Every key of the Redis lease starts so: ``<prefix><lease>:{leader,term,handover,slot:*}``."""

ACQUIRE = """
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {0, redis.call('GET', KEYS[1]) or ''}
end
local term = redis.call('INCR', KEYS[2])
local value = ARGV[1] .. '#' .. term
redis.call('SET', KEYS[1], value, 'PX', ARGV[2])
return {term, value}
"""
RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# A short-lived note for a standby blocked in BLPOP; it expires if nobody was waiting.
HANDOVER = """
redis.call('RPUSH', KEYS[1], ARGV[1])
return redis.call('PEXPIRE', KEYS[1], ARGV[2])
"""
# The fence: the lease is checked and the slot recorded in one atomic step on the server.
CLAIM = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {-1, ''} end
local last = redis.call('GET', KEYS[2])
if last and tonumber(last) >= tonumber(ARGV[2]) then return {0, last} end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
return {1, ARGV[2]}
"""


class RedisCoordinator:
    """Leader lease and slot records in Redis, keyed under ``sentry-console:cron:<name>``."""

    def __init__(self, url: BrokerURL, name: str, timing: LeaseTiming, schedule: str = "") -> None:
        self._url = url
        self._timing = timing
        self._prefix = f"{KEY_PREFIX}{name}"
        # The lease value names the holder and its schedule: ``host:pid:rand|digest#term``.
        self._owner = f"{owner_id()}|{schedule}"
        self._value: str | None = None
        self._client: redis.Redis | None = None

    def _redis(self) -> redis.Redis:
        if self._client is None:
            timeout = self._timing.io_timeout
            self._client = redis.Redis.from_url(
                self._url.to_redis_py_url(),
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                retry=Retry(NoBackoff(), 0),
                single_connection_client=True,
            )
        return self._client

    def _call(self, script: str, keys: list[str], args: list[Any]) -> Any:
        try:
            return self._redis().eval(script, len(keys), *keys, *args)
        except redis.RedisError as exc:
            self._drop()
            raise BrokerUnavailable(type(exc).__name__) from None

    def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()

    def refresh(self) -> Refresh:
        """Renew the lease if held, else try to take it."""
        ttl_ms = int(self._timing.ttl * 1000)
        lease = f"{self._prefix}:leader"
        if self._value is not None:
            if self._call(RENEW, [lease], [self._value, ttl_ms]):
                return Refresh(True, int(self._value.rsplit("#", 1)[1]))
            self._value = None
        term, value = self._call(ACQUIRE, [lease, f"{self._prefix}:term"], [self._owner, ttl_ms])
        holder = value.decode() if isinstance(value, bytes) else str(value)
        if term:
            self._value = holder
            return Refresh(True, int(term))
        if not holder:
            return Refresh(False)
        who, _, schedule = holder.rsplit("#", 1)[0].partition("|")
        return Refresh(False, holder=who.rsplit(":", 1)[0], schedule=schedule or None)

    def last_slot(self, entry: str) -> float | None:
        """The slot recorded for ``entry``."""
        try:
            raw = self._redis().get(f"{self._prefix}:slot:{entry}")
        except redis.RedisError as exc:
            self._drop()
            raise BrokerUnavailable(type(exc).__name__) from None
        return None if raw is None else float(raw)

    def claim(self, entry: str, slot: float, keep: float = RECORD_TTL_FLOOR) -> bool:
        """Record ``slot`` atomically with the lease check; the record lives ``keep`` seconds."""
        if self._value is None:
            return False
        keys = [f"{self._prefix}:leader", f"{self._prefix}:slot:{entry}"]
        args = [self._value, repr(slot), int(keep * 1000)]
        status, _last = self._call(CLAIM, keys, args)
        if status == -1:
            self._value = None
        return bool(status == 1)

    def wait(self, seconds: float) -> None:
        """Block on the hand-over list, so a warm stop's release wakes one standby at once."""
        timeout = max(0.1, min(seconds, self._timing.io_timeout / 2))
        try:
            self._redis().blpop([f"{self._prefix}:handover"], timeout=timeout)
        except redis.RedisError:
            self._drop()
            time.sleep(seconds)

    def release(self) -> None:
        """Delete the lease if it is still ours, and wake a standby."""
        if self._value is not None:
            with contextlib.suppress(BrokerUnavailable):
                released = self._call(RELEASE, [f"{self._prefix}:leader"], [self._value])
                if released:
                    self._call(HANDOVER, [f"{self._prefix}:handover"], [self._owner, 1000])
            self._value = None
        self._drop()
