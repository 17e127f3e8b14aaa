"""One capacity reading per poll for whichever broker the console uses; never raises."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from console.broker.capacity import BrokerCapacity, CapacityWarning, with_warning
from console.broker.errors import BrokerUnavailable
from console.broker.rabbit_alarm import BlockedWatcher
from console.broker.rabbit_api import RabbitManagementAPI
from console.broker.redis_capacity import RedisCapacityProbe, Routes
from console.broker.urls import BrokerURL

_API_ALARM_CODES = ("memory-alarm", "disk-alarm")


class CapacityMonitor:
    """Redis: the capacity probe. RabbitMQ: the blocked watcher plus the management API."""

    def __init__(
        self,
        url: BrokerURL,
        transport_options: Mapping[str, Any] | None = None,
        routes: Routes | None = None,
        *,
        timeout: float = 1.0,
        api: str | None = None,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.url = url
        self._options = dict(transport_options or {})
        self._routes = dict(routes or {})
        self._timeout = timeout
        self._redis: RedisCapacityProbe | None = None
        self.watcher: BlockedWatcher | None = None
        self.api: RabbitManagementAPI | None = None
        if url.kind == "amqp":
            self.watcher = BlockedWatcher(url, timeout=max(timeout, 2.0), on_change=on_change)
            self.api = RabbitManagementAPI(url, api, timeout=timeout)

    def start(self) -> None:
        """Start watching for RabbitMQ alarms (nothing to start for Redis)."""
        if self.watcher is not None:
            self.watcher.start()

    def poll(self, queues: Sequence[str]) -> BrokerCapacity | None:
        """This poll's reading (blocking, bounded by the timeout); None when the broker is away."""
        if self.url.kind == "redis":
            return self._poll_redis(queues)
        return self._poll_amqp(queues)

    def _poll_redis(self, queues: Sequence[str]) -> BrokerCapacity | None:
        try:
            if self._redis is None:
                self._redis = RedisCapacityProbe(
                    self.url, self._options, self._routes, timeout=self._timeout
                )
            return self._redis.poll(queues)
        except BrokerUnavailable:
            if self._redis is not None:
                self._redis.close()
            self._redis = None
            return None

    def _poll_amqp(self, queues: Sequence[str]) -> BrokerCapacity:
        assert self.api is not None
        self.api.refresh()
        return self._amqp_reading(queues)

    def _amqp_reading(self, queues: Sequence[str]) -> BrokerCapacity:
        assert self.api is not None and self.watcher is not None
        capacity = self.api.capacity(queues)
        watcher = self.watcher
        if watcher.error is None and watcher.canaries > 0:
            # The API samples node alarms every few seconds; the AMQP notification is current.
            kept = tuple(w for w in capacity.warnings if w.code not in _API_ALARM_CODES)
            capacity = replace(capacity, warnings=kept)
        if watcher.error is not None:
            note = f"RabbitMQ alarm watcher not connected ({watcher.error}), retrying"
            capacity = replace(capacity, notes=(*capacity.notes, note))
        blocked = watcher.blocked
        if blocked is None:
            return capacity
        return with_warning(
            replace(capacity, blocked=blocked),
            CapacityWarning(
                "publishers-blocked",
                f"RabbitMQ blocks every publisher ({blocked}): free memory or disk on the "
                "broker, drain queues",
                "alarm",
            ),
        )

    def close(self) -> None:
        """Stop the watcher and close connections."""
        if self.watcher is not None:
            self.watcher.stop()
        if self._redis is not None:
            self._redis.close()
            self._redis = None


def read_capacity_once(
    url: BrokerURL,
    transport_options: Mapping[str, Any] | None,
    routes: Routes | None,
    queues: Sequence[str],
    *,
    api: str | None = None,
    timeout: float = 2.0,
    settle: float = 0.3,
) -> BrokerCapacity | None:
    """One reading for a one-shot command: on RabbitMQ, both API requests and a canary publish.

    ``settle`` is how long the canary waits for a ``connection.blocked`` after its first publish.
    """
    monitor = CapacityMonitor(url, transport_options, routes, timeout=timeout, api=api)
    try:
        if monitor.watcher is None:
            return monitor.poll(queues)
        assert monitor.api is not None
        monitor.start()
        monitor.api.refresh()
        if monitor.api.error is None:
            monitor.api.refresh()
        deadline = time.monotonic() + timeout
        watcher = monitor.watcher
        while watcher.canaries == 0 and watcher.error is None and time.monotonic() < deadline:
            time.sleep(0.02)
        if watcher.canaries:
            stop = time.monotonic() + settle
            while watcher.blocked is None and time.monotonic() < stop:
                time.sleep(0.02)
        return monitor._amqp_reading(queues)  # the API was read above, both kinds
    finally:
        monitor.close()


__all__ = ["CapacityMonitor", "read_capacity_once"]
