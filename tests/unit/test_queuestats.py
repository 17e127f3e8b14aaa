"""Queue rates, sparkline history and drain estimates from depths and event counts, fake clock."""

from __future__ import annotations

import pytest

from console.broker.depth import QueueDepth
from console.queuestats import QueueTracker, drain_estimate


def depth(ready: int | None, name: str = "q") -> dict[str, QueueDepth]:
    """One queue's depth reading."""
    return {name: QueueDepth(name, ready, None, None, exists=ready is not None)}


def test_first_sample_has_no_rates_and_empty_drains_now() -> None:
    tracker = QueueTracker()
    (row,) = tracker.update(depth(5), 100.0)
    assert (row.in_rate, row.out_rate, row.drain_seconds, row.history) == (None, None, None, (5,))
    (empty,) = QueueTracker().update(depth(0), 100.0)
    assert empty.drain_seconds == 0.0


def test_steady_flow_is_invisible_to_depth_but_counted_from_events() -> None:
    """Fill and drain at 50/s: the depth never moves, the event counters show both rates."""
    tracker = QueueTracker(window=5.0)
    now, sent, taken = 0.0, 0, 0
    for _ in range(10):
        row = tracker.update(depth(20), now, {"q": sent}, {"q": taken})[0]
        now, sent, taken = now + 1.0, sent + 50, taken + 50
    assert row.rate_source == "events"
    assert row.in_rate == pytest.approx(50.0) and row.out_rate == pytest.approx(50.0)
    assert row.drain_seconds is None  # not draining: in == out
    blind = QueueTracker()
    blind.update(depth(20), 0.0)
    (row,) = blind.update(depth(20), 1.0)
    assert (row.rate_source, row.in_rate, row.out_rate) == ("depth", 0.0, 0.0)


def test_depth_only_fallback() -> None:
    tracker = QueueTracker(window=5.0)
    tracker.update(depth(100), 0.0)
    (row,) = tracker.update(depth(80), 2.0)
    assert row.rate_source == "depth"
    assert (row.in_rate, row.out_rate) == (0.0, 10.0)
    assert row.drain_seconds == pytest.approx(8.0)
    (row,) = tracker.update(depth(110), 4.0)  # over the 4 s window: +10 net
    assert row.in_rate == pytest.approx(2.5) and row.out_rate == 0.0
    assert row.drain_seconds is None


def test_only_dequeues_counted_derives_enqueues_from_depth() -> None:
    """Producers without sent events: in = depth change + counted dequeues."""
    tracker = QueueTracker(window=5.0)
    tracker.update(depth(100), 0.0, {}, {"q": 0})
    (row,) = tracker.update(depth(90), 1.0, {}, {"q": 30})
    assert row.rate_source == "events"
    assert (row.in_rate, row.out_rate) == (20.0, 30.0)
    assert row.drain_seconds == pytest.approx(9.0)


def test_only_enqueues_counted_derives_dequeues_and_undercounted_enqueues_are_raised() -> None:
    tracker = QueueTracker(window=5.0)
    tracker.update(depth(0), 0.0, {"q": 0}, {})
    (row,) = tracker.update(depth(5), 1.0, {"q": 25}, {})
    assert (row.in_rate, row.out_rate) == (25.0, 20.0)
    mixed = QueueTracker(window=5.0)
    mixed.update(depth(0), 0.0, {"q": 0}, {"q": 0})
    (row,) = mixed.update(depth(40), 1.0, {"q": 10}, {"q": 10})  # 40 more came in unseen
    assert (row.in_rate, row.out_rate) == (50.0, 10.0)


def test_window_averages_and_counter_restart_falls_back() -> None:
    tracker = QueueTracker(window=3.0)
    for t, n in [(0.0, 0), (1.0, 10), (2.0, 20), (3.0, 100), (4.0, 110)]:
        row = tracker.update(depth(0), t, {"q": n}, {"q": n})[0]
    assert row.in_rate == pytest.approx((110 - 10) / 3.0)  # samples t=1..4
    (row,) = tracker.update(depth(0), 5.0, {"q": 3}, {"q": 3})  # the counters restarted
    assert row.rate_source == "depth" and row.in_rate == 0.0


def test_history_is_bounded_and_gone_queues_are_forgotten() -> None:
    tracker = QueueTracker(history=5)
    for t in range(10):
        (row,) = tracker.update(depth(t), float(t))
    assert row.history == (5, 6, 7, 8, 9)
    assert tracker.update(depth(1, "other"), 10.0)[0].history == (1,)
    assert tracker.update(depth(3), 11.0)[0].history == (3,)
    (missing,) = tracker.update(depth(None), 12.0)
    assert (missing.ready, missing.in_rate, missing.history) == (None, None, (3,))


def test_drain_estimate() -> None:
    assert drain_estimate(0, None, None) == 0.0
    assert drain_estimate(10, None, 5.0) is None
    assert drain_estimate(100, 10.0, 30.0) == pytest.approx(5.0)
    assert drain_estimate(100, 30.0, 30.0) is None
