"""Per-queue history: depth samples and event counts turned into rates, a sparkline and a drain ETA.

Rates are measured where Celery events say what entered and left a queue: ``task-sent`` events
(with ``task_send_sent_event``) count enqueues and ``task-received`` events count dequeues, both
as cumulative per-queue counters handed in by the caller. What is not measured is derived from
the depth change, since ``depth change = enqueued - dequeued`` over any interval; with no events
at all both rates fall back to the depth change alone.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from console.broker.models import QueueDepth

#: Seconds of history the rates are averaged over (one poll is too jittery to show).
RATE_WINDOW = 5.0


@dataclass(frozen=True)
class QueueRow:
    """One queue as the console shows it."""

    name: str
    ready: int | None
    """Messages waiting (None: unknown or the queue does not exist)."""
    consumers: int | None
    unacked: int | None
    exists: bool
    in_rate: float | None
    """Messages per second entering the queue."""
    out_rate: float | None
    """Messages per second leaving the queue."""
    history: tuple[int, ...]
    """Recent depth samples, oldest first."""
    drain_seconds: float | None
    """Estimated seconds until empty at the current rates (None: not draining)."""
    rate_source: str = "depth"
    """``events`` when at least one rate was counted from task events, else ``depth``."""


@dataclass(frozen=True)
class _Sample:
    t: float
    ready: int
    enqueued: int | None
    dequeued: int | None


def _counted(old: int | None, new: int | None) -> int | None:
    """Messages counted between two cumulative readings (None: not measured over the interval)."""
    if old is None or new is None or new < old:
        return None  # a counter that appeared, vanished or restarted measures nothing here
    return new - old


def rates(first: _Sample, last: _Sample) -> tuple[float | None, float | None, bool]:
    """(in_rate, out_rate, measured) between two samples of one queue."""
    elapsed = last.t - first.t
    if elapsed <= 0:
        return None, None, False
    delta = last.ready - first.ready
    enq = _counted(first.enqueued, last.enqueued)
    deq = _counted(first.dequeued, last.dequeued)
    if enq is None and deq is None:
        out = max(-delta, 0)
        return max(delta, 0) / elapsed, out / elapsed, False
    if deq is None:
        assert enq is not None
        deq = max(enq - delta, 0)
    elif enq is None:
        enq = max(delta + deq, 0)
    else:
        # Producers without sent events still show: depth grew by more than was counted in.
        enq = max(enq, delta + deq)
    return enq / elapsed, deq / elapsed, True


def drain_estimate(ready: int, in_rate: float | None, out_rate: float | None) -> float | None:
    """Seconds until ``ready`` reaches zero at these rates; 0 when empty, None when not draining."""
    if ready == 0:
        return 0.0
    if in_rate is None or out_rate is None:
        return None
    net = out_rate - in_rate
    return ready / net if net > 0 else None


class QueueTracker:
    """Keeps a bounded history per queue and derives rates over the last ``window`` seconds."""

    def __init__(self, history: int = 120, window: float = RATE_WINDOW) -> None:
        self._history = history
        self.window = window
        self._samples: dict[str, deque[_Sample]] = {}

    def update(
        self,
        depths: Mapping[str, QueueDepth],
        now: float,
        enqueued: Mapping[str, int] | None = None,
        dequeued: Mapping[str, int] | None = None,
    ) -> list[QueueRow]:
        """Record one poll at ``now`` (depths and cumulative event counts); return the rows."""
        enqueued = enqueued or {}
        dequeued = dequeued or {}
        rows = []
        for name, depth in depths.items():
            samples = self._samples.setdefault(name, deque(maxlen=self._history))
            in_rate = out_rate = drain = None
            measured = False
            if depth.ready is not None:
                sample = _Sample(now, depth.ready, enqueued.get(name), dequeued.get(name))
                first = self._window_start(samples, now)
                if first is not None:
                    in_rate, out_rate, measured = rates(first, sample)
                    drain = drain_estimate(depth.ready, in_rate, out_rate)
                elif depth.ready == 0:
                    drain = 0.0
                samples.append(sample)
            rows.append(
                QueueRow(
                    name=name,
                    ready=depth.ready,
                    consumers=depth.consumers,
                    unacked=depth.unacked,
                    exists=depth.exists,
                    in_rate=in_rate,
                    out_rate=out_rate,
                    history=tuple(s.ready for s in samples),
                    drain_seconds=drain,
                    rate_source="events" if measured else "depth",
                )
            )
        for gone in set(self._samples) - set(depths):
            del self._samples[gone]
        return rows

    def _window_start(self, samples: deque[_Sample], now: float) -> _Sample | None:
        """The oldest sample within the window, else the latest one (None: no history yet)."""
        if not samples:
            return None
        start = samples[-1]
        for sample in reversed(samples):
            if now - sample.t > self.window:
                break
            start = sample
        return start
