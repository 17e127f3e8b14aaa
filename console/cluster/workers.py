"""Bounded table of workers: liveness from heartbeats and pings, counts, pool and queues."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from console.cluster.models import WorkerInfo

#: Heartbeat intervals of silence after which a worker that announced its interval (``freq`` in
#: its ``worker-online`` and ``worker-heartbeat`` events; 2 s by default) counts as offline: a
#: worker cut off shows offline within three of its heartbeats on a screen refreshed every
#: second, and a heartbeat late by up to one and a quarter intervals keeps it online.
MISSED_HEARTBEATS = 2.25
#: The least silence that makes any worker offline, however fast it beats.
MIN_SILENCE = 1.0


class _Worker:
    """Mutable per-worker record."""

    __slots__ = (
        "beat_active",
        "beat_processed",
        "failed",
        "freq",
        "hostname",
        "last_seen",
        "loadavg",
        "offline_since",
        "pid",
        "pool_size",
        "processed",
        "queues",
        "stats_total",
        "sw_ident",
    )

    def __init__(self, hostname: str) -> None:
        self.hostname = hostname
        self.last_seen: float | None = None
        self.offline_since: float | None = None  # set by worker-offline
        self.pid: int | None = None
        self.processed = 0
        self.failed = 0
        self.stats_total: int | None = None
        self.pool_size: int | None = None
        self.queues: tuple[str, ...] = ()
        self.loadavg: tuple[float, ...] | None = None
        self.sw_ident: str | None = None
        self.freq: float | None = None  # heartbeat interval the worker announced
        self.beat_active: int | None = None  # "active" and "processed" of the last heartbeat
        self.beat_processed: int | None = None


class WorkerTable:
    """At most ``max_workers`` workers; offline after silence, dropped after a longer one.

    Silence means ``MISSED_HEARTBEATS`` of the worker's own heartbeat intervals, or
    ``offline_after`` seconds for a worker that never announced one (seen by a ping only).

    Not thread-safe by itself: ``ClusterState`` calls it under its lock. With
    ``from_heartbeats`` (no task events subscribed), a worker's active and processed counts are
    those its last heartbeat carried.
    """

    def __init__(
        self,
        max_workers: int,
        offline_after: float,
        drop_offline_after: float,
        *,
        from_heartbeats: bool = False,
    ) -> None:
        self.from_heartbeats = from_heartbeats
        self.max_workers = max_workers
        self.offline_after = offline_after
        self.drop_offline_after = drop_offline_after
        self._workers: dict[str, _Worker] = {}

    def __len__(self) -> int:
        return len(self._workers)

    def get(self, hostname: str) -> _Worker:
        """Return the record for ``hostname``, creating it (within the cap) if new."""
        worker = self._workers.get(hostname)
        if worker is None:
            if len(self._workers) >= self.max_workers:
                self._evict_one()
            worker = self._workers[hostname] = _Worker(hostname)
        return worker

    def seen(self, hostname: str, now: float) -> None:
        """Note a sign of life from ``hostname`` (an event or a ping reply)."""
        worker = self._workers.get(hostname) or self.get(hostname)
        worker.last_seen = now
        worker.offline_since = None

    def on_event(self, kind: str, hostname: str, event: Mapping[str, Any], now: float) -> None:
        """Apply a ``worker-online``, ``worker-heartbeat`` or ``worker-offline`` event."""
        worker = self.get(hostname)
        pid = event.get("pid")
        if isinstance(pid, int):
            worker.pid = pid
        ident = event.get("sw_ident")
        if ident:
            worker.sw_ident = str(ident)
        freq = event.get("freq")
        # Only the worker's own heartbeat timer says its interval; the heartbeat it sends when
        # asked (the `heartbeat` control command, on every connect) carries a fixed freq of 5
        # and, unlike the timer's, no ``active`` count.
        if (
            isinstance(freq, int | float)
            and not isinstance(freq, bool)
            and freq > 0
            and "active" in event
        ):
            worker.freq = float(freq)
        loadavg = event.get("loadavg")
        if isinstance(loadavg, list | tuple):
            worker.loadavg = tuple(float(x) for x in loadavg)
        if kind == "worker-heartbeat":
            active, processed = event.get("active"), event.get("processed")
            if isinstance(active, int):
                worker.beat_active = active
            if isinstance(processed, int):
                worker.beat_processed = processed
        if kind == "worker-offline":
            worker.offline_since = now
        else:
            worker.last_seen = now
            worker.offline_since = None

    def count_finished(self, hostname: str, failed: bool) -> None:
        """Count one task that finished on ``hostname``."""
        worker = self._workers.get(hostname) or self.get(hostname)
        worker.processed += 1
        if failed:
            worker.failed += 1

    def note_stats(self, hostname: str, stats: Mapping[str, Any], now: float) -> None:
        """Take pool size, pid and the total of accepted tasks from an ``inspect stats`` reply."""
        worker = self.get(hostname)
        worker.last_seen = now
        worker.offline_since = None
        pool = stats.get("pool")
        if isinstance(pool, Mapping):
            # "processes" follows pool_grow / pool_shrink; "max-concurrency" keeps the start value
            processes = pool.get("processes")
            size = pool.get("max-concurrency")
            if isinstance(processes, list) and processes:
                worker.pool_size = len(processes)
            elif isinstance(size, int):
                worker.pool_size = size
        pid = stats.get("pid")
        if isinstance(pid, int):
            worker.pid = pid
        total = stats.get("total")
        if isinstance(total, Mapping):
            worker.stats_total = sum(v for v in total.values() if isinstance(v, int))

    def note_queues(self, hostname: str, queues: tuple[str, ...], now: float) -> None:
        """Take the names of the queues ``hostname`` consumes."""
        worker = self.get(hostname)
        worker.last_seen = now
        worker.offline_since = None
        worker.queues = queues

    def _silence_limit(self, worker: _Worker) -> float:
        """Seconds without a sign of life after which ``worker`` counts as offline."""
        if worker.freq is None:
            return self.offline_after
        return max(MIN_SILENCE, worker.freq * MISSED_HEARTBEATS)

    def _is_online(self, worker: _Worker, now: float) -> bool:
        return (
            worker.offline_since is None
            and worker.last_seen is not None
            and now - worker.last_seen <= self._silence_limit(worker)
        )

    def _offline_since(self, worker: _Worker) -> float:
        if worker.offline_since is not None:
            return worker.offline_since
        return (worker.last_seen or 0.0) + self._silence_limit(worker)

    def prune(self, now: float) -> None:
        """Drop workers that have been offline for longer than ``drop_offline_after``."""
        stale = [
            hostname
            for hostname, worker in self._workers.items()
            if not self._is_online(worker, now)
            and now - self._offline_since(worker) > self.drop_offline_after
        ]
        for hostname in stale:
            del self._workers[hostname]

    def _evict_one(self) -> None:
        """Make room: the longest-offline worker goes first, else the longest silent one."""
        workers = list(self._workers.values())
        offline = [w for w in workers if w.offline_since is not None]
        pool = offline or workers
        victim = min(pool, key=self._offline_since if offline else _last_seen)
        del self._workers[victim.hostname]

    def online(self, now: float) -> list[str]:
        """Hostnames of the workers online at ``now``."""
        return sorted(h for h, w in self._workers.items() if self._is_online(w, now))

    def views(
        self, now: float, active: Mapping[str, int]
    ) -> tuple[list[WorkerInfo], frozenset[str]]:
        """Frozen views of every worker (sorted by hostname) and the queues online ones consume."""
        self.prune(now)
        views: list[WorkerInfo] = []
        consumed: set[str] = set()
        for hostname in sorted(self._workers):
            worker = self._workers[hostname]
            online = self._is_online(worker, now)
            if online:
                consumed.update(worker.queues)
            processed = worker.processed
            busy = active.get(hostname, 0)
            if self.from_heartbeats:
                busy = worker.beat_active or 0
                processed = worker.beat_processed or 0
            if not processed and worker.stats_total:
                processed = worker.stats_total
            views.append(
                WorkerInfo(
                    hostname=hostname,
                    online=online,
                    last_heartbeat=worker.last_seen,
                    pid=worker.pid,
                    active=busy,
                    processed=processed,
                    failed=worker.failed,
                    pool_size=worker.pool_size,
                    queues=worker.queues,
                    loadavg=worker.loadavg,
                    sw_ident=worker.sw_ident,
                )
            )
        return views, frozenset(consumed)


def _last_seen(worker: _Worker) -> float:
    return worker.last_seen or 0.0
