"""Per-queue history: depth samples turned into rates, a sparkline series and a drain estimate."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from console.broker.depth import QueueDepth


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
    """Messages per second entering the queue (estimated)."""
    out_rate: float | None
    """Messages per second leaving the queue (estimated)."""
    history: tuple[int, ...]
    """Recent depth samples, oldest first."""
    drain_seconds: float | None
    """Estimated seconds until empty at the current rates (None: not draining)."""


class QueueTracker:
    """Keeps a bounded depth history per queue and derives rates from it.

    Rates come from depth changes plus the number of tasks workers took in the same interval
    (``taken``), so a queue that is filled and drained at the same pace still shows both rates.
    """

    def __init__(self, history: int = 120) -> None:
        self._history = history
        self._samples: dict[str, deque[tuple[float, int]]] = {}

    def update(
        self,
        depths: Mapping[str, QueueDepth],
        now: float,
        taken: Mapping[str, int] | None = None,
    ) -> list[QueueRow]:
        """Record one poll's depths at time ``now`` and return the rows to show."""
        rows = []
        for name, depth in depths.items():
            samples = self._samples.setdefault(name, deque(maxlen=self._history))
            in_rate = out_rate = drain = None
            if depth.ready is not None:
                if samples:
                    last_t, last_ready = samples[-1]
                    elapsed = now - last_t
                    if elapsed > 0:
                        delta = depth.ready - last_ready
                        out = (taken or {}).get(name, 0)
                        out_rate = max(out / elapsed, max(-delta, 0) / elapsed)
                        in_rate = max((delta / elapsed) + out_rate, 0.0)
                        net = out_rate - in_rate
                        if depth.ready == 0:
                            drain = 0.0
                        elif net > 0:
                            drain = depth.ready / net
                samples.append((now, depth.ready))
            rows.append(
                QueueRow(
                    name=name,
                    ready=depth.ready,
                    consumers=depth.consumers,
                    unacked=depth.unacked,
                    exists=depth.exists,
                    in_rate=in_rate,
                    out_rate=out_rate,
                    history=tuple(ready for _, ready in samples),
                    drain_seconds=drain,
                )
            )
        for gone in set(self._samples) - set(depths):
            del self._samples[gone]
        return rows
