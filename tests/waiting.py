"""Waiting on a condition with a deadline: the one polling helper the tests and benchmarks share.

``wait_until`` sleeps between polls (plain threads and processes); ``until`` lets a Textual
``Pilot`` run the app between polls. Both return the probe's first truthy value, so a probe can
hand back what it found (a pid, a line, a snapshot) rather than just ``True``, and both raise
``AssertionError`` naming what was awaited when the deadline passes. The probe always runs once
more after the deadline, so a condition that became true while the last sleep ran still counts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar, overload

T = TypeVar("T")


class Pauses(Protocol):
    """What ``until`` needs of a Textual ``Pilot``: a pause that lets the app run."""

    async def pause(self, delay: float | None = None) -> None:
        """Wait ``delay`` seconds while the app processes its messages."""


def no_work_in(app: Any, group: str) -> Callable[[], bool]:
    """A probe for ``until``: none of the Textual ``app``'s workers in ``group`` is pending or
    running (an action a key started has finished, and recorded whatever it did)."""
    return lambda: not any(w.group == group and not w.is_finished for w in app.workers)


def timed_out(what: str, timeout: float, seen: Callable[[], object] | None) -> AssertionError:
    """The error at the deadline, with what ``seen`` reports, if given, for diagnosis."""
    message = f"timed out after {timeout} s waiting for {what}"
    if seen is not None:
        message += f"; saw {seen()}"
    return AssertionError(message)


@overload
def wait_until(
    what: str,
    probe: Callable[[], bool],
    timeout: float = ...,
    step: float = ...,
    seen: Callable[[], object] | None = ...,
) -> bool: ...


@overload
def wait_until(
    what: str,
    probe: Callable[[], T | bool | None],
    timeout: float = ...,
    step: float = ...,
    seen: Callable[[], object] | None = ...,
) -> T: ...


def wait_until(
    what: str,
    probe: Callable[[], T | bool | None],
    timeout: float = 30.0,
    step: float = 0.1,
    seen: Callable[[], object] | None = None,
) -> T | bool:
    """Poll ``probe`` every ``step`` seconds until it returns something truthy, and return that.

    AssertionError after ``timeout`` seconds, naming ``what`` and, if ``seen`` is given, what it
    returns then (the last state observed, a log).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise timed_out(what, timeout, seen)
        time.sleep(step)


@overload
async def until(
    pilot: Pauses,
    probe: Callable[[], bool],
    what: str,
    timeout: float = ...,
    step: float = ...,
    seen: Callable[[], object] | None = ...,
) -> bool: ...


@overload
async def until(
    pilot: Pauses,
    probe: Callable[[], T | bool | None],
    what: str,
    timeout: float = ...,
    step: float = ...,
    seen: Callable[[], object] | None = ...,
) -> T: ...


async def until(
    pilot: Pauses,
    probe: Callable[[], T | bool | None],
    what: str,
    timeout: float = 5.0,
    step: float = 0.05,
    seen: Callable[[], object] | None = None,
) -> T | bool:
    """``wait_until`` for Pilot tests: the app runs (``pilot.pause(step)``) between polls."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise timed_out(what, timeout, seen)
        await pilot.pause(step)
