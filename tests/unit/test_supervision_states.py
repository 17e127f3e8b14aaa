"""State machine of the supervisor, replayed with a fake clock and a fake spawner."""

from __future__ import annotations

import itertools
import signal
from typing import Literal

import pytest

from console.supervision.model import ProcessSnapshot, ProcessState, ProgramConfig
from console.supervision.program import restart_delay
from console.supervision.supervisor import Supervisor
from tests.supervision_support.fakes import (
    Behaviour,
    FakeClock,
    FakeProcess,
    drive,
    make_supervisor,
    program,
)


def state(sup: Supervisor, name: str) -> ProcessState:
    return next(s.state for s in sup.snapshot() if s.name == name)


def snap(sup: Supervisor, name: str) -> ProcessSnapshot:
    return next(s for s in sup.snapshot() if s.name == name)


def test_quick_exits_back_off_1_2_3_seconds_then_fatal() -> None:
    sup, clock, spawner = make_supervisor()
    spawner.behaviours["bad"] = Behaviour(exit_after=0.0, exit_status=1)
    sup.add_program(program("bad", startsecs=1.0, startretries=3))
    seen_backoff = []

    def fatal() -> bool:
        current = snap(sup, "bad")
        if current.state is ProcessState.BACKOFF:
            seen_backoff.append(current)
        return current.state is ProcessState.FATAL

    drive(sup, clock, fatal, step=0.05)
    times = spawner.times("bad")
    assert len(times) == 4  # the first attempt and startretries retries
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps == pytest.approx([1.0, 2.0, 3.0], abs=0.11)
    assert "Exited too quickly" in snap(sup, "bad").description
    assert seen_backoff[0].backoff_remaining == pytest.approx(1.0, abs=0.11)
    assert "retrying in" in seen_backoff[0].description
    clock.advance(100)
    sup.tick()
    assert state(sup, "bad") is ProcessState.FATAL and len(spawner.times("bad")) == 4


def test_start_leaves_fatal_with_a_fresh_retry_budget() -> None:
    sup, clock, spawner = make_supervisor()
    spawner.behaviours["bad"] = Behaviour(exit_after=0.0, exit_status=1)
    sup.add_program(program("bad", startretries=1))
    drive(sup, clock, lambda: state(sup, "bad") is ProcessState.FATAL)
    assert len(spawner.times("bad")) == 2
    spawner.behaviours["bad"] = Behaviour()  # fixed: now it stays up
    sup.start("bad")
    sup.tick()
    assert state(sup, "bad") is ProcessState.STARTING
    drive(sup, clock, lambda: state(sup, "bad") is ProcessState.RUNNING)
    assert snap(sup, "bad").restarts == 1  # the retry; the operator's start is not a restart


def test_starting_becomes_running_after_startsecs() -> None:
    sup, clock, _ = make_supervisor()
    sup.add_program(program("w", startsecs=2.0))
    sup.tick()
    assert state(sup, "w") is ProcessState.STARTING
    clock.advance(1.9)
    sup.tick()
    assert state(sup, "w") is ProcessState.STARTING
    clock.advance(0.2)
    sup.tick()
    current = snap(sup, "w")
    assert current.state is ProcessState.RUNNING
    assert current.description.startswith(f"pid {current.pid}, uptime 0:00:02")


@pytest.mark.parametrize(
    ("autorestart", "status", "restarts"),
    [
        (True, 0, True),
        (True, 3, True),
        (False, 3, False),
        ("unexpected", 0, False),
        ("unexpected", 3, True),
        ("unexpected", 2, False),  # 2 is listed in exitcodes
    ],
)
def test_exit_from_running_follows_autorestart(
    autorestart: bool | Literal["unexpected"], status: int, restarts: bool
) -> None:
    sup, clock, spawner = make_supervisor()
    spawner.behaviours["w"] = Behaviour(exit_after=60.0, exit_status=status)
    sup.add_program(program("w", autorestart=autorestart, exitcodes=(0, 2)))
    sup.tick()
    spawner.behaviours["w"] = Behaviour()
    drive(sup, clock, lambda: spawner.spawned[0][2].status is not None)
    # It ran longer than the quick-exit window: a restart, if due, is immediate.
    assert len(spawner.times("w")) == (2 if restarts else 1)
    assert state(sup, "w") is (ProcessState.STARTING if restarts else ProcessState.EXITED)
    assert snap(sup, "w").exitstatus == status
    clock.advance(60)
    sup.tick()
    assert len(spawner.times("w")) == (2 if restarts else 1)


def test_repeated_quick_exits_from_running_are_never_a_tight_loop() -> None:
    sup, clock, spawner = make_supervisor()
    spawner.behaviours["w"] = Behaviour(exit_after=0.5, exit_status=1)
    sup.add_program(program("w", startsecs=0.0))
    drive(sup, clock, lambda: len(spawner.times("w")) >= 5, step=0.01)
    times = spawner.times("w")
    waits = [b - a - 0.5 for a, b in itertools.pairwise(times)]
    assert waits == pytest.approx([1.0, 2.0, 4.0, 8.0], abs=0.03)
    assert snap(sup, "w").state is ProcessState.RUNNING  # startsecs=0
    assert [restart_delay(n) for n in (0, 1, 2, 9)] == [0.0, 1.0, 2.0, 30.0]


def test_long_run_resets_the_quick_exit_streak() -> None:
    sup, clock, spawner = make_supervisor()
    spawner.behaviours["w"] = Behaviour(exit_after=20.0, exit_status=1)
    sup.add_program(program("w"))
    drive(sup, clock, lambda: len(spawner.times("w")) >= 3, step=0.05)
    times = spawner.times("w")
    assert [b - a for a, b in itertools.pairwise(times)] == pytest.approx([20, 20], abs=0.06)


def test_stop_sends_stopsignal_to_the_group() -> None:
    sup, clock, spawner = make_supervisor()
    sup.add_program(program("w", stopsignal=signal.SIGINT))
    drive(sup, clock, lambda: state(sup, "w") is ProcessState.RUNNING)
    sup.stop("w")
    assert state(sup, "w") is ProcessState.STOPPING
    sup.tick()
    assert state(sup, "w") is ProcessState.STOPPED
    assert spawner.last("w").signals == [(signal.SIGINT, True)]
    clock.advance(100)
    sup.tick()
    assert state(sup, "w") is ProcessState.STOPPED and len(spawner.times("w")) == 1


def test_settled_only_when_no_timer_is_due() -> None:
    """The loop may sleep longer only when nothing waits on startsecs, a backoff or a stop."""
    sup, clock, spawner = make_supervisor()
    sup.add_program(program("w", startsecs=2.0))
    assert not sup.tick()  # STARTING: RUNNING is due after startsecs
    clock.advance(2.1)
    assert sup.tick() and state(sup, "w") is ProcessState.RUNNING
    sup.stop("w")
    assert state(sup, "w") is ProcessState.STOPPING
    assert sup.tick() and state(sup, "w") is ProcessState.STOPPED
    spawner.behaviours["bad"] = Behaviour(exit_after=0.0, exit_status=1)
    sup.add_program(program("bad", startsecs=1.0, startretries=3))
    sup.tick()
    assert not sup.tick() and state(sup, "bad") is ProcessState.BACKOFF
    drive(sup, clock, lambda: state(sup, "bad") is ProcessState.FATAL)
    assert sup.tick()


def test_stop_that_times_out_sigkills_the_group() -> None:
    sup, clock, spawner = make_supervisor()
    spawner.behaviours["w"] = Behaviour(ignore=frozenset({signal.SIGTERM}))
    sup.add_program(program("w", stopwaitsecs=5.0))
    drive(sup, clock, lambda: state(sup, "w") is ProcessState.RUNNING)
    sup.stop("w")
    stop_time = clock()
    drive(sup, clock, lambda: state(sup, "w") is not ProcessState.STOPPING)
    process = spawner.last("w")
    assert process.signals == [(signal.SIGTERM, True), (signal.SIGKILL, True)]
    assert clock() - stop_time == pytest.approx(5.0, abs=0.11)
    current = snap(sup, "w")
    assert current.state is ProcessState.STOPPED and current.exitstatus == -signal.SIGKILL


def test_killasgroup_off_kills_the_program_alone() -> None:
    sup, clock, spawner = make_supervisor()
    spawner.behaviours["w"] = Behaviour(ignore=frozenset({signal.SIGTERM}))
    sup.add_program(program("w", stopwaitsecs=1.0, stopasgroup=False, killasgroup=False))
    drive(sup, clock, lambda: state(sup, "w") is ProcessState.RUNNING)
    sup.stop("w")
    drive(sup, clock, lambda: state(sup, "w") is ProcessState.STOPPED)
    assert spawner.last("w").signals == [(signal.SIGTERM, False), (signal.SIGKILL, False)]


def test_stop_during_backoff_and_restart_while_running() -> None:
    sup, clock, spawner = make_supervisor()
    spawner.behaviours["bad"] = Behaviour(exit_after=0.0, exit_status=1)
    sup.add_program(program("bad"))
    drive(sup, clock, lambda: state(sup, "bad") is ProcessState.BACKOFF)
    sup.stop("bad")
    assert state(sup, "bad") is ProcessState.STOPPED
    clock.advance(10)
    sup.tick()
    assert len(spawner.times("bad")) == 1

    sup.add_program(program("ok"))
    drive(sup, clock, lambda: state(sup, "ok") is ProcessState.RUNNING)
    first = spawner.last("ok")
    sup.restart("ok")
    drive(sup, clock, lambda: state(sup, "ok") is ProcessState.RUNNING)
    assert first.signals == [(signal.SIGTERM, True)] and spawner.last("ok") is not first
    assert snap(sup, "ok").restarts == 1


def test_remove_program_stops_it_first() -> None:
    sup, clock, spawner = make_supervisor()
    spawner.behaviours["w"] = Behaviour(ignore=frozenset({signal.SIGTERM}))
    sup.add_program(program("w", stopwaitsecs=2.0))
    drive(sup, clock, lambda: state(sup, "w") is ProcessState.RUNNING)
    sup.remove_program("w")
    assert [s.state for s in sup.snapshot()] == [ProcessState.STOPPING]
    drive(sup, clock, lambda: not sup.snapshot())
    assert spawner.last("w").signals[-1] == (signal.SIGKILL, True)
    with pytest.raises(KeyError):
        sup.output("w")


def test_autostart_off_and_unknown_names() -> None:
    sup, clock, spawner = make_supervisor()
    sup.add_program(program("w"), autostart=False)
    clock.advance(5)
    sup.tick()
    current = snap(sup, "w")
    assert current.state is ProcessState.STOPPED and current.description == "Not started"
    assert spawner.spawned == []
    with pytest.raises(ValueError):
        sup.add_program(program("w"))
    with pytest.raises(KeyError):
        sup.start("nope")


def test_spawn_error_counts_as_a_failed_start() -> None:
    sup, _, spawner = make_supervisor()

    def broken(config: ProgramConfig) -> FakeProcess:
        raise FileNotFoundError(2, "No such file or directory")

    spawner.spawn = broken  # type: ignore[method-assign]
    sup.add_program(program("w", startretries=0))
    sup.tick()
    current = snap(sup, "w")
    assert current.state is ProcessState.FATAL
    assert "spawn error" in current.description


def test_shutdown_stops_everything_and_refuses_restarts() -> None:
    sup, clock, spawner = make_supervisor()
    for name in ("a", "b"):
        sup.add_program(program(name))
    drive(sup, clock, lambda: all(s.state is ProcessState.RUNNING for s in sup.snapshot()))
    sup.shutdown(timeout=5)
    assert all(s.state is ProcessState.STOPPED for s in sup.snapshot())
    assert all(spawner.last(n).signals == [(signal.SIGTERM, True)] for n in ("a", "b"))
    sup.start("a")
    sup.shutdown()  # idempotent
    clock.advance(10)
    sup.tick()
    assert len(spawner.spawned) == 2


def test_times_shown_come_from_the_injected_wall_clock() -> None:
    wall = FakeClock()
    wall.now = 1_800_000_000.0
    sup, clock, spawner = make_supervisor(wall_clock=wall)
    spawner.behaviours["w"] = Behaviour(exit_after=5.0, exit_status=3)
    sup.add_program(program("w", startsecs=1.0, autorestart=False))
    drive(sup, clock, lambda: state(sup, "w") is ProcessState.RUNNING)
    assert snap(sup, "w").started_at == 1_800_000_000.0
    wall.advance(42.0)
    drive(sup, clock, lambda: state(sup, "w") is ProcessState.EXITED)
    exited = snap(sup, "w")
    assert exited.exited_at == 1_800_000_042.0
    assert [e.at for e in exited.exits] == [1_800_000_042.0]
