"""Task event counts and runtimes by (name, hostname, queue): O(1) per event, bounded in size.

Fed by the cluster state's ``on_task_event`` hook on the event receiver's thread; read at
scrape time, when the families celery-exporter publishes are built from plain integers (no
``prometheus_client`` object is touched per event).
"""

from __future__ import annotations

import math
import re
import threading
from bisect import bisect_left
from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric

from console.cluster.models import host_of

KINDS = ("sent", "received", "started", "succeeded", "failed", "rejected", "revoked", "retried")
"""The task events counted, each as ``celery_task_<kind>_total``."""
INDEX = {f"task-{kind}": i for i, kind in enumerate(KINDS)}
FAILED = INDEX["task-failed"]
SUCCEEDED = INDEX["task-succeeded"]
SENT = INDEX["task-sent"]
BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
    math.inf,
)
"""``celery_task_runtime`` buckets: prometheus_client's defaults, as celery-exporter uses."""
MAX_SERIES = 10_000
"""Label sets kept; events of any further one are counted under ``name="other"``."""
MAX_EXCEPTIONS = 200
"""Distinct ``exception`` label values kept; further ones count as ``other``."""
OTHER = "other"
UNKNOWN = "unknown"
GENERIC = "generic"
_EXCEPTION = re.compile(r"^(\w+)\(")

HELP = {
    "sent": "Sent when a task message is published.",
    "received": "Sent when the worker receives a task.",
    "started": "Sent just before the worker executes the task.",
    "succeeded": "Sent if the task executed successfully.",
    "failed": "Sent if the execution of the task failed.",
    "rejected": "The task was rejected by the worker, possibly to be re-queued or moved to a "
    "dead letter queue.",
    "revoked": "Sent if the task has been revoked.",
    "retried": "Sent if the task failed, but will be retried in the future.",
}

Key = tuple[str, str, str]
Row = tuple[Key, list[int], dict[str, int] | None, list[int] | None, float]


def shown(index: int, counts: list[int]) -> bool:
    """Whether kind ``index`` of a series is published: ``sent`` once counted, every other
    kind (at 0, as celery-exporter does, so rate() works from the first failure on) once the
    series saw any worker-side event."""
    if index == SENT:
        return counts[SENT] > 0
    return any(counts[:SENT] + counts[SENT + 1 :])


def exception_class(text: Any) -> str:
    """``ValueError`` from ``"ValueError('boom')"`` (celery-exporter's rule; else Unknown)."""
    if isinstance(text, str):
        found = _EXCEPTION.match(text)
        if found:
            return found.group(1)
    return "UnknownException"


class _Series:
    """Counts of one label set: one integer per kind, runtime buckets, failures by class."""

    __slots__ = ("buckets", "changed_at", "counts", "failures", "runtime_sum", "total_seen")

    def __init__(self) -> None:
        self.counts = [0] * len(KINDS)
        self.buckets: list[int] | None = None  # per bucket, not cumulative
        self.runtime_sum = 0.0
        self.failures: dict[str, int] | None = None
        self.total_seen = 0  # total at the last prune, to notice quiet series
        self.changed_at = 0.0


class TaskEventCounts:
    """Thread-safe task counters; ``record`` is the cluster state's task event hook."""

    def __init__(self, hostname_mode: str = "host", max_series: int = MAX_SERIES) -> None:
        self.hostname_mode = hostname_mode
        self.max_series = max_series
        self._lock = threading.Lock()  # taken to add or drop a series, and to read them
        self._series: dict[Key, _Series] = {}
        self._seen: dict[tuple[str | None, str | None, str | None], _Series] = {}
        """Raw (name, hostname, queue) as the hook gets them -> their series: the fast path."""
        self._exceptions: set[str] = set()

    @property
    def overflowed(self) -> int:
        """Events counted under ``other`` because the label sets were all taken."""
        series = self._series.get((OTHER, OTHER, OTHER))
        return sum(series.counts) if series is not None else 0

    def label(self, hostname: str | None) -> str:
        """The ``hostname`` label value of a node name, as the hostname mode says."""
        if not hostname:
            return UNKNOWN
        if self.hostname_mode == "node":
            return hostname
        if self.hostname_mode == GENERIC:
            return GENERIC
        return host_of(hostname)

    def record(
        self,
        kind: str,
        name: str | None,
        hostname: str | None,
        queue: str | None,
        event: Mapping[str, Any],
    ) -> None:
        """Count one applied task event: a dict lookup and an increment when the labels are known.

        Called by one thread at a time (the cluster state's lock is held around the hook), so
        the counts are bumped without a lock of their own; readers copy them under ``_lock``.
        """
        index = INDEX.get(kind)
        if index is None:
            return
        series = self._seen.get((name, hostname, queue))
        if series is None:
            series = self._add(name, hostname, queue)
        series.counts[index] += 1
        if index == SUCCEEDED:
            runtime = event.get("runtime")
            if runtime.__class__ is float or runtime.__class__ is int:
                buckets = series.buckets
                if buckets is None:
                    buckets = series.buckets = [0] * len(BUCKETS)
                buckets[bisect_left(BUCKETS, runtime)] += 1
                series.runtime_sum += runtime
        elif index == FAILED:
            self._failed(series, event)

    def _add(self, name: str | None, hostname: str | None, queue: str | None) -> _Series:
        """The series of labels not seen before (created within the bound, else ``other``)."""
        key = (name or UNKNOWN, self.label(hostname), queue or UNKNOWN)
        with self._lock:
            series = self._series.get(key)
            if series is None:
                if len(self._series) >= self.max_series:
                    key = (OTHER, OTHER, OTHER)
                    series = self._series.get(key)
                if series is None:
                    series = self._series[key] = _Series()
            if len(self._seen) >= 4 * self.max_series:
                self._seen = {}
            self._seen[(name, hostname, queue)] = series
        return series

    def _failed(self, series: _Series, event: Mapping[str, Any]) -> None:
        failures = series.failures
        if failures is None:
            failures = series.failures = {}
        cls = exception_class(event.get("exception"))
        if cls not in self._exceptions:
            if len(self._exceptions) >= MAX_EXCEPTIONS:
                cls = OTHER
            else:
                self._exceptions.add(cls)
        failures[cls] = failures.get(cls, 0) + 1

    def __len__(self) -> int:
        return len(self._series)

    def prune(self, live_hosts: set[str], drop_after: float, now: float) -> int:
        """Forget series of hosts no longer reported that were quiet for ``drop_after`` s."""
        dropped = 0
        with self._lock:
            for key, series in list(self._series.items()):
                total = sum(series.counts)
                if total != series.total_seen or not series.changed_at:
                    series.total_seen, series.changed_at = total, now
                elif key[1] not in live_hosts and now - series.changed_at > drop_after:
                    del self._series[key]
                    dropped += 1
            if dropped:  # an event of a dropped series that races this starts it afresh
                kept = set(map(id, self._series.values()))
                self._seen = {raw: s for raw, s in self._seen.items() if id(s) in kept}
        return dropped

    def rows(self) -> list[Row]:
        """A copy of every series: (labels, counts by kind, failures, buckets, runtime sum)."""
        with self._lock:
            return [
                (
                    key,
                    list(s.counts),
                    dict(s.failures) if s.failures else None,
                    list(s.buckets) if s.buckets else None,
                    s.runtime_sum,
                )
                for key, s in self._series.items()
            ]

    def families(self) -> Iterator[Metric]:
        """The ``celery_task_*_total`` counters and the ``celery_task_runtime`` histogram.

        The reference rendering through prometheus_client; the listener uses the equivalent,
        faster :func:`console.metrics.exposition.render_tasks` (a test holds them equal).
        """
        rows = self.rows()
        labels = ["name", "hostname", "queue_name"]
        for index, kind in enumerate(KINDS):
            extra = ["exception"] if index == FAILED else []
            family = CounterMetricFamily(f"celery_task_{kind}", HELP[kind], labels=labels + extra)
            for key, counts, failures, _, _ in rows:
                if not shown(index, counts):
                    continue
                if index == FAILED:
                    family.add_metric([*key, ""], 0)
                    for cls, n in sorted((failures or {}).items()):
                        family.add_metric([*key, cls], n)
                else:
                    family.add_metric(list(key), counts[index])
            yield family
        runtime = HistogramMetricFamily(
            "celery_task_runtime", "Histogram of task runtime measurements.", labels=labels
        )
        for key, _, _, buckets, total in rows:
            if buckets:
                cumulative, running = [], 0
                for bound, n in zip(BUCKETS, buckets, strict=True):
                    running += n
                    cumulative.append((_bound(bound), running))
                runtime.add_metric(list(key), cumulative, total)
        yield runtime


def _bound(value: float) -> str:
    return "+Inf" if math.isinf(value) else repr(value)
