"""Schedule slots: the moments an entry falls due, the same on every host.

An interval schedule's slots sit on multiples of its interval since the epoch, so every cron
process computes the same slots without sharing a start time. Other schedules (crontab, solar)
ask the schedule itself whether it fell due since the last slot sent.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from celery.schedules import schedule as interval_schedule

RECORD_TTL_FLOOR = 30 * 24 * 3600.0
"""Seconds a slot record lives at least after its last claim (Redis)."""
RECORD_TTL_PERIODS = 100
"""A slot record outlives this many of its schedule's periods, whatever the floor."""
RECORD_TTL_CALENDAR = 400 * 24 * 3600.0
"""Seconds a crontab or solar entry's record lives: beyond a yearly crontab's gap."""


def interval_of(sched: Any) -> float | None:
    """Seconds between slots of a plain interval schedule, else None."""
    if type(sched) is interval_schedule or isinstance(sched, interval_schedule):
        seconds = float(sched.run_every.total_seconds())
        return seconds if seconds > 0 else None
    return None


def latest_slot(sched: Any, now: float) -> float:
    """The most recent slot at or before ``now`` (epoch seconds)."""
    every = interval_of(sched)
    if every is None:
        return math.floor(now * 1000) / 1000
    return math.floor(now / every) * every


def due_slot(sched: Any, last: float | None, now: float) -> float | None:
    """The slot to send at ``now`` given the ``last`` slot sent, or None when nothing is due.

    However many slots passed since ``last``, only the latest is returned: a cron that was
    down sends one catch-up tick, not one per missed interval.
    """
    slot = latest_slot(sched, now)
    if last is None:
        return slot
    if interval_of(sched) is not None:
        return slot if slot > last else None
    due, _next = sched.is_due(datetime.fromtimestamp(last, tz=UTC))
    return slot if due and slot > last else None


def next_check(sched: Any, now: float, longest: float) -> float:
    """Seconds until the entry's next slot, at most ``longest``."""
    every = interval_of(sched)
    if every is None:
        return longest
    wait = (math.floor(now / every) + 1) * every - now
    return max(0.0, min(wait, longest))


def record_ttl(sched: Any) -> float:
    """How long a slot record is kept after a claim: the floor, or many periods when longer.

    A schedule without a fixed interval (crontab, solar) gets a period of up to a year: the
    longest gap a crontab can leave between two runs.
    """
    period = interval_of(sched)
    if period is None:
        return RECORD_TTL_CALENDAR
    return max(RECORD_TTL_FLOOR, RECORD_TTL_PERIODS * period)
