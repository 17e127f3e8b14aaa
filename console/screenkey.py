"""What a screen can see change in a snapshot: the server pushes a snapshot only when this did.

A screen shows figures at its own precision (``<1ms``, ``41.2M``, ``17m``); a change below it
does not need a push. Running programs' uptimes change with time alone: a screen ages its copy
(:func:`console.snapshot.aged`). Everything else counts exactly. The formatters are the
screen's own, so a figure whose text would change always changes the key.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from console.broker.capacity import BrokerCapacity
from console.broker.models import BrokerHealth
from console.snapshot import DashboardData
from console.supervision.model import ProcessSnapshot
from console.ui import format as fmt

#: Fields compared as they are shown rather than as they are.
SHOWN_FIELDS = ("processes", "workers", "broker", "capacity")


def shown(data: DashboardData) -> dict[str, Any]:
    """The fields of :data:`SHOWN_FIELDS` as a screen shows them (plain, JSON-encodable)."""
    return {
        "processes": steady(data.processes),
        # A worker's heartbeat time and load average are not shown (whether it is online is).
        "workers": tuple(replace(w, last_heartbeat=None, loadavg=None) for w in data.workers),
        "broker": _broker(data.broker),
        "capacity": _capacity(data.capacity),
    }


def steady(processes: tuple[ProcessSnapshot, ...]) -> tuple[ProcessSnapshot, ...]:
    """The processes without what only the passing of time changes: a live program's uptime
    (and its description, which repeats it)."""
    return tuple(
        replace(p, uptime=None, description="") if p.uptime is not None else p for p in processes
    )


def _broker(health: BrokerHealth) -> Any:
    # last_ok is never shown; the round trip only as whole milliseconds.
    rtt = None if health.rtt_ms is None else fmt.millis(health.rtt_ms)
    return (replace(health, last_ok=None, rtt_ms=None), rtt)


def _capacity(capacity: BrokerCapacity | None) -> Any:
    if capacity is None or capacity.memory is None:
        return capacity
    memory = capacity.memory
    fraction = memory.fraction
    to_full = memory.seconds_to_full
    text = (
        fmt.size(memory.used),
        None if fraction is None else (f"{fraction:.0%}", fraction >= 0.75, fraction >= 0.9),
        None if to_full is None else fmt.duration(to_full),
    )
    exact = replace(memory, used=None, growth_per_second=None, seconds_to_full=None)
    return (replace(capacity, memory=exact), text)
