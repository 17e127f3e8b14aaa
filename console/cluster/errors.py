"""Failures the cluster monitor survives, counted by kind so they can be shown, and logged."""

from __future__ import annotations

import logging
import threading

log = logging.getLogger("sentry_console.cluster")

#: The first this many failures of a kind are each logged; after that, one line per power of ten.
LOG_EACH_FIRST = 10

POLL = "cluster poll"
ON_CONNECT = "events on-connect"
UNDECODABLE = "undecodable event"
DUPLICATE = "duplicate node name"


def _crossed_power_of_ten(before: int, after: int) -> bool:
    step = 10
    while step <= after:
        if before < step:
            return True
        step *= 10
    return False


class ErrorCounts:
    """Thread-safe counts of survived failures by kind; a flood is logged sparsely."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}

    def record(self, kind: str, detail: str, n: int = 1) -> None:
        """Count ``n`` failures of ``kind`` and log them (all of the first few, then sparsely)."""
        with self._lock:
            before = self._counts.get(kind, 0)
            after = self._counts[kind] = before + n
        if before < LOG_EACH_FIRST or _crossed_power_of_ten(before, after):
            log.warning("%s failed: %s (%d so far)", kind, detail, after)

    def counts(self) -> dict[str, int]:
        """A copy of the counts by kind."""
        with self._lock:
            return dict(self._counts)
