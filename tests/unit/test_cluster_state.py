"""Bounded cluster state fed with synthetic Celery event dicts and an injected clock."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from console.cluster.state import ARG_LIMIT, ClusterState


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def ev(kind: str, uuid: str = "", hostname: str = "w1@h", **fields: Any) -> dict[str, Any]:
    """A Celery-shaped event dict."""
    event: dict[str, Any] = {"type": kind, "hostname": hostname, "timestamp": 1_000.0}
    if uuid:
        event["uuid"] = uuid
    event.update(fields)
    return event


def run_task(state: ClusterState, uuid: str, outcome: str = "task-succeeded") -> None:
    state.apply(ev("task-received", uuid, name="t.add", args="(1, 2)", kwargs="{}"))
    state.apply(ev("task-started", uuid))
    state.apply(ev(outcome, uuid, result="3", runtime=0.01, exception="E()", traceback="tb"))


def test_task_lifecycle_and_worker_counts() -> None:
    clock = FakeClock()
    state = ClusterState(clock=clock)
    state.apply(ev("worker-online", pid=42, sw_ident="py-celery"))
    state.apply(ev("task-received", "a", name="t.sleep", args="(5,)", kwargs="{'x': 1}"))
    state.apply(ev("task-started", "a"))
    snap = state.snapshot("listening")
    assert [t.uuid for t in snap.active_tasks] == ["a"]
    active = snap.active_tasks[0]
    assert (active.name, active.state, active.worker, active.args) == (
        "t.sleep",
        "STARTED",
        "w1@h",
        "(5,)",
    )
    assert snap.workers[0].active == 1 and snap.workers[0].pid == 42
    state.apply(ev("task-failed", "a", exception="ValueError('boom')", traceback="Traceback..."))
    run_task(state, "b")
    snap = state.snapshot("listening")
    assert snap.active_tasks == []
    worker = snap.workers[0]
    assert (worker.processed, worker.failed, worker.active) == (2, 1, 0)
    failed = state.task("a")
    assert failed is not None and failed.state == "FAILURE"
    assert failed.exception == "ValueError('boom')" and failed.traceback == "Traceback..."
    assert snap.events_received == 7


def test_late_started_never_reopens_a_finished_task() -> None:
    state = ClusterState()
    state.apply(ev("task-received", "a", name="n"))
    state.apply(ev("task-succeeded", "a", result="1"))
    state.apply(ev("task-started", "a"))
    info = state.task("a")
    assert info is not None and info.state == "SUCCESS"
    assert state.snapshot("listening").active_tasks == []


def test_retry_then_success_counts_once() -> None:
    state = ClusterState()
    state.apply(ev("task-received", "a", name="n"))
    state.apply(ev("task-retried", "a", exception="Retry()", traceback="tb"))
    assert state.snapshot("x").active_tasks == []
    state.apply(ev("task-received", "a", name="n", retries=1))
    state.apply(ev("task-succeeded", "a", result="1"))
    info = state.task("a")
    assert info is not None and info.retries == 1 and info.exception is None
    assert state.snapshot("x").workers[0].processed == 1


def test_args_are_truncated() -> None:
    state = ClusterState()
    state.apply(ev("task-received", "a", name="n", args="x" * 10_000, kwargs={"k": "v"}))
    info = state.task("a")
    assert info is not None and len(info.args) == ARG_LIMIT and info.kwargs == "{'k': 'v'}"


def test_kept_tasks_share_one_copy_of_each_name_worker_and_short_value() -> None:
    # Each event arrives with its own copies (as decoded off the wire): 10,000 kept tasks
    # would otherwise hold 10,000 copies of the same few strings.
    def fresh(text: str) -> str:
        return "".join(list(text))

    state = ClusterState()
    for uuid in ("a", "b"):
        state.apply(ev("task-sent", uuid, name=fresh("proj.tasks.email"), queue=fresh("mail")))
        received = ev("task-received", uuid, hostname=fresh("celery@host-1"), args=fresh("()"))
        state.apply({**received, "name": fresh("proj.tasks.email"), "kwargs": fresh("{}")})
        state.apply(ev("task-succeeded", uuid, hostname=fresh("celery@host-1"), result="x" * 40))
    a, b = state.task("a"), state.task("b")
    assert a is not None and b is not None
    for field in ("name", "worker", "args", "kwargs"):
        assert getattr(a, field) == getattr(b, field)
        assert getattr(a, field) is getattr(b, field), field
    assert a.result == b.result == "x" * 40


def test_task_cap_holds_after_50000_tasks_and_evicts_finished_first() -> None:
    state = ClusterState(max_tasks=1_000)
    for i in range(10):
        state.apply(ev("task-started", f"running-{i}", name="long"))
    for i in range(50_000):
        run_task(state, f"t{i}")
    held, active, finished = state.counts()
    assert held == 1_000 and active == 10 and finished == 990
    assert all(state.task(f"running-{i}") is not None for i in range(10))  # unfinished survive
    assert state.task("t0") is None and state.task("t49999") is not None
    recent = state.snapshot("x", recent=5).recent_tasks
    assert [t.uuid for t in recent] == [f"t{i}" for i in range(49_999, 49_994, -1)]


def test_task_cap_evicts_oldest_when_nothing_finished() -> None:
    state = ClusterState(max_tasks=100)
    for i in range(50_000):
        state.apply(ev("task-received", f"t{i}", name="n"))
    held, active, _ = state.counts()
    assert held == 100 and active == 100
    assert state.task("t49899") is None and state.task("t49900") is not None


def test_worker_cap_drops_offline_first() -> None:
    clock = FakeClock()
    state = ClusterState(max_workers=3, clock=clock)
    for name in ("a@h", "b@h", "c@h"):
        state.apply(ev("worker-heartbeat", hostname=name))
    state.apply(ev("worker-offline", hostname="b@h"))
    state.apply(ev("worker-heartbeat", hostname="d@h"))
    hosts = [w.hostname for w in state.snapshot("x").workers]
    assert hosts == ["a@h", "c@h", "d@h"]
    for i in range(2_000):
        state.apply(ev("worker-heartbeat", hostname=f"n{i}@h"))
    assert len(state.snapshot("x").workers) == 3


def test_offline_after_silence_then_dropped() -> None:
    clock = FakeClock()
    state = ClusterState(offline_after=10.0, drop_offline_after=60.0, clock=clock)
    state.apply(ev("worker-heartbeat", hostname="a@h"))
    state.apply(ev("worker-heartbeat", hostname="b@h"))
    clock.now += 9.0
    state.apply(ev("worker-heartbeat", hostname="b@h"))
    assert all(w.online for w in state.snapshot("x").workers)
    clock.now += 2.0
    online = {w.hostname: w.online for w in state.snapshot("x").workers}
    assert online == {"a@h": False, "b@h": True}
    clock.now += 60.0  # a: offline since t=10, now t=71 -> dropped; b: offline since t=19
    assert [w.hostname for w in state.snapshot("x").workers] == ["b@h"]
    clock.now += 10.0
    assert state.snapshot("x").workers == []


def test_worker_offline_event_is_immediate_and_a_heartbeat_revives() -> None:
    clock = FakeClock()
    state = ClusterState(offline_after=10.0, drop_offline_after=60.0, clock=clock)
    state.apply(ev("worker-online", hostname="a@h"))
    state.apply(ev("worker-offline", hostname="a@h"))
    assert not state.snapshot("x").workers[0].online
    state.apply(ev("worker-heartbeat", hostname="a@h"))
    assert state.snapshot("x").workers[0].online
    state.apply(ev("worker-offline", hostname="a@h"))
    clock.now += 61.0
    assert state.snapshot("x").workers == []


def test_ping_stats_and_queues_from_remote_control() -> None:
    clock = FakeClock()
    state = ClusterState(offline_after=10.0, clock=clock)
    state.note_ping({"quiet@h": {"ok": "pong"}})
    state.note_stats(
        {
            "quiet@h": {
                "pid": 7,
                "pool": {"max-concurrency": 4, "processes": [1, 2, 3, 4]},
                "total": {"a": 3},
            }
        }
    )
    state.note_queues({"quiet@h": [{"name": "q2"}, {"name": "q1"}]})
    snap = state.snapshot("x")
    worker = snap.workers[0]
    assert (worker.online, worker.pid, worker.pool_size, worker.processed) == (True, 7, 4, 3)
    assert worker.queues == ("q1", "q2") and snap.consumed_queues == frozenset({"q1", "q2"})
    clock.now += 11
    assert state.snapshot("x").consumed_queues == frozenset()


def test_inspect_active_fallback_merges_with_events() -> None:
    state = ClusterState()
    state.apply(ev("task-started", "known", name="n"))
    missing = state.note_inspect_active(
        {
            "w1@h": [
                {"id": "known", "name": "n", "args": [1], "kwargs": {}},
                {"id": "hidden", "name": "m", "args": [2, 3], "kwargs": {}, "time_start": 5.0},
            ]
        }
    )
    assert missing == 1
    uuids = {t.uuid for t in state.snapshot("inspect").active_tasks}
    assert uuids == {"known", "hidden"}
    hidden = state.task("hidden")
    assert hidden is not None and hidden.args == "[2, 3]" and hidden.worker == "w1@h"


def test_malformed_events_are_counted_and_ignored() -> None:
    state = ClusterState()
    for bad in ({}, {"type": 3}, {"type": "task-started"}, {"type": "worker-heartbeat"}):
        state.apply(bad)
    assert state.counts() == (0, 0, 0) and state.events_received == 4


@pytest.mark.parametrize("module", ["console.cluster"])
def test_cluster_imports_neither_textual_nor_workers(module: str) -> None:
    code = (
        f"import sys, {module}; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('textual', 'workers')]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_per_queue_counts_from_sent_and_received_events() -> None:
    routes = {"t.add": "math", "t.log": "logs"}
    calls: list[str] = []

    def router(name: str) -> str | None:
        calls.append(name)
        return routes.get(name)

    state = ClusterState(router=router)
    state.apply(ev("task-sent", "a", name="t.add", queue="math-high"))  # explicit queue wins
    state.apply(ev("task-received", "a", name="t.add"))
    state.apply(ev("task-received", "b", name="t.log"))  # no sent event: routed by name
    state.apply(ev("task-received", "c", name="t.log"))
    state.apply(ev("task-received", "d", name="t.unknown"))  # unroutable: not counted
    state.apply(ev("task-sent", "e", name="t.add"))
    snap = state.snapshot("x")
    assert snap.enqueued == {"math-high": 1, "math": 1}
    assert snap.dequeued == {"math-high": 1, "logs": 2}
    assert calls.count("t.log") == 1  # routes are cached


def test_queue_counters_are_bounded() -> None:
    state = ClusterState(router=lambda name: name, max_queues=3)
    for n in range(10):
        state.apply(ev("task-received", f"u{n}", name=f"q{n}"))
    assert len(state.snapshot("x").dequeued) == 3


def test_offline_after_missed_heartbeats_of_the_workers_own_interval() -> None:
    clock = FakeClock()
    state = ClusterState(offline_after=10.0, drop_offline_after=60.0, clock=clock)
    state.apply(ev("worker-online", hostname="fast@h", freq=2.0, active=0))
    state.apply(ev("worker-heartbeat", hostname="slow@h", freq=30.0, active=0))
    state.apply(ev("worker-heartbeat", hostname="plain@h"))  # no interval announced
    # asked for a heartbeat (control command), a worker says freq=5 whatever its interval
    state.apply(ev("worker-heartbeat", hostname="fast@h", freq=5))
    state.apply(ev("worker-heartbeat", hostname="plain@h", freq=5))
    clock.now += 4.4  # under 2.25 beats of 2 s
    assert all(w.online for w in state.snapshot("x").workers)
    clock.now += 0.2
    online = {w.hostname: w.online for w in state.snapshot("x").workers}
    assert online == {"fast@h": False, "plain@h": True, "slow@h": True}
    clock.now += 5.5  # t=10.1: past the default for the one that announced no interval
    online = {w.hostname: w.online for w in state.snapshot("x").workers}
    assert online == {"fast@h": False, "plain@h": False, "slow@h": True}
    clock.now += 57.0  # t=67.1: fast (offline since t=4.5) dropped; 30 s beats still online
    online = {w.hostname: w.online for w in state.snapshot("x").workers}
    assert online == {"plain@h": False, "slow@h": True}
    clock.now += 3.0  # t=70.1: plain (offline since t=10) dropped; slow silent for 2.25 beats
    online = {w.hostname: w.online for w in state.snapshot("x").workers}
    assert online == {"slow@h": False}


def test_worker_counts_come_from_heartbeats_without_task_events() -> None:
    clock = FakeClock()
    lean = ClusterState(clock=clock, task_events=False)
    lean.apply(ev("worker-heartbeat", hostname="a@h", active=3, processed=120))
    lean.apply(ev("worker-heartbeat", hostname="b@h"))  # an old worker sending no counts
    a, b = lean.snapshot("listening").workers
    assert (a.hostname, a.online, a.active, a.processed) == ("a@h", True, 3, 120)
    assert (b.active, b.processed) == (0, 0)
    lean.apply(ev("worker-heartbeat", hostname="a@h", active=0, processed=125))
    a = lean.snapshot("listening").workers[0]
    assert (a.active, a.processed) == (0, 125)

    # with task events, the counts are the console's own: a heartbeat's figures are ignored
    full = ClusterState(clock=clock)
    full.apply(ev("worker-heartbeat", hostname="w1@h", active=3, processed=120))
    run_task(full, "u1")
    w = full.snapshot("listening").workers[0]
    assert (w.active, w.processed) == (0, 1)
