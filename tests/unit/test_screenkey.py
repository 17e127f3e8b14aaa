"""The screen key: a figure whose shown text (or style) would change always changes it."""

from __future__ import annotations

from console.broker.capacity import BrokerCapacity, BrokerMemory
from console.broker.models import BrokerHealth
from console.screenkey import shown
from console.snapshot import DashboardData


def key_of(memory: BrokerMemory) -> object:
    health = BrokerHealth("connected", None, 0.5, None, 0, None)
    data = DashboardData("redis://x", health, capacity=BrokerCapacity(memory=memory))
    return shown(data)["capacity"]


def test_memory_counts_as_shown_text_and_style() -> None:
    limit = 10_000_000
    at = BrokerMemory(used=7_496_000, limit=limit, limit_source="maxmemory")
    # 74.96% and 75.00% both read "75%", but the second turns yellow and ranks higher.
    assert key_of(at) != key_of(BrokerMemory(used=7_500_000, limit=limit, limit_source="maxmemory"))
    # A few bytes more under the same "7.1M" and "75%" change nothing shown.
    assert key_of(at) == key_of(BrokerMemory(used=7_496_100, limit=limit, limit_source="maxmemory"))
    # "full in 5m" against "full in 6m".
    soon = BrokerMemory(used=1, limit=limit, limit_source="maxmemory", seconds_to_full=300.0)
    assert key_of(soon) != key_of(BrokerMemory(**{**soon.__dict__, "seconds_to_full": 360.0}))
    assert key_of(soon) == key_of(BrokerMemory(**{**soon.__dict__, "seconds_to_full": 330.0}))
