"""The last failed tasks, gathered from the task events the cluster monitor already receives."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from console.cluster.models import TaskInfo

RECENT_FAILURES = 100
"""Failed tasks kept (newest first)."""
EXCEPTION_CHARS = 300
"""An exception's text is cut to this in the list; the task detail has the whole of it."""
FAILURE_WINDOW = 300.0
"""Seconds over which ``status --json`` counts failures (``failures_5m``)."""


class RecentFailures:
    """Remembers failed tasks seen in successive polls of the recent tasks; bounded, newest first.

    Tracebacks are left out (the list goes to every attached client on every refresh); the task
    detail fetches them while the monitor still holds the task.
    """

    def __init__(self, limit: int = RECENT_FAILURES) -> None:
        self.limit = limit
        self._items: dict[str, TaskInfo] = {}

    def update(self, tasks: Iterable[TaskInfo]) -> tuple[TaskInfo, ...]:
        """Take the failures among ``tasks``; return every kept failure, newest first."""
        for task in tasks:
            if task.state == "FAILURE" and task.uuid not in self._items:
                exception = (task.exception or "")[:EXCEPTION_CHARS]
                self._items[task.uuid] = dataclasses.replace(
                    task, traceback=None, exception=exception, args="", kwargs="", result=None
                )
        ordered = sorted(self._items.values(), key=_when, reverse=True)[: self.limit]
        if len(ordered) < len(self._items):
            self._items = {t.uuid: t for t in ordered}
        return tuple(ordered)


def _when(task: TaskInfo) -> float:
    return task.finished or task.started or task.received or 0.0


def failures_since(failures: Iterable[TaskInfo], since: float) -> int:
    """How many of ``failures`` finished at or after ``since`` (a Unix time)."""
    return sum(1 for task in failures if _when(task) >= since)
