"""``/healthz``: healthy only while the broker answers and no program is FATAL; says why not."""

from __future__ import annotations

from dataclasses import dataclass

from console.broker.urls import redact_url
from console.runtime import DashboardData
from console.supervision import ProcessState

STALE_AFTER = 30.0
"""Seconds after which the console's last refresh is too old to vouch for anything."""


@dataclass(frozen=True)
class Health:
    """A verdict and the one line that explains it."""

    ok: bool
    reason: str

    @property
    def status(self) -> int:
        """The HTTP status: 200 or 503."""
        return 200 if self.ok else 503


def judge(data: DashboardData | None, now: float, stale_after: float = STALE_AFTER) -> Health:
    """The health of the console as its latest refresh shows it."""
    if data is None:
        return Health(False, "starting: no refresh yet")
    problems = []
    if data.broker.state != "connected":
        why = f": {data.broker.reason}" if data.broker.reason else ""
        problems.append(f"broker {data.broker.state}{why}")
    fatal = sorted(p.name for p in data.processes if p.state is ProcessState.FATAL)
    if fatal:
        problems.append(f"FATAL: {', '.join(fatal)}")
    age = now - data.taken_at
    if age > stale_after:
        problems.append(f"no refresh for {age:.0f} s")
    if problems:
        return Health(False, redact_url("; ".join(problems)))
    programs = len(data.processes)
    return Health(True, f"ok: broker connected, {programs} programs, none FATAL")
