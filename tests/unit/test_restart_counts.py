"""Only restarts count as restarts: an operator's stop then start does not."""

from __future__ import annotations

from console.supervision.model import ProcessSnapshot, ProcessState
from tests.supervision_support.fakes import Behaviour, drive, make_supervisor, program


def one(sup) -> ProcessSnapshot:  # type: ignore[no-untyped-def]
    return sup.snapshot()[0]


def running(sup) -> bool:  # type: ignore[no-untyped-def]
    return one(sup).state is ProcessState.RUNNING


def test_stop_then_start_is_not_a_restart_but_restart_is() -> None:
    sup, clock, spawner = make_supervisor()
    sup.add_program(program("w", startsecs=0.1))
    drive(sup, clock, lambda: running(sup))
    sup.stop("w")
    drive(sup, clock, lambda: one(sup).state is ProcessState.STOPPED)
    sup.start("w")
    drive(sup, clock, lambda: running(sup))
    assert len(spawner.times("w")) == 2 and one(sup).restarts == 0
    sup.restart("w")
    drive(sup, clock, lambda: len(spawner.times("w")) == 3 and running(sup))
    assert one(sup).restarts == 1


def test_stop_then_start_while_still_stopping_is_not_a_restart() -> None:
    sup, clock, spawner = make_supervisor()
    spawner.behaviours["w"] = Behaviour(ignore=frozenset({15}))  # takes its time to stop
    sup.add_program(program("w", startsecs=0.1, stopwaitsecs=1.0))
    drive(sup, clock, lambda: running(sup))
    sup.stop("w")
    sup.start("w")  # pressed while it is still STOPPING
    drive(sup, clock, lambda: len(spawner.times("w")) == 2 and running(sup))
    assert one(sup).restarts == 0


def test_automatic_restarts_after_an_exit_count() -> None:
    sup, clock, spawner = make_supervisor()
    spawner.behaviours["w"] = Behaviour(exit_after=5.0, exit_status=1)
    sup.add_program(program("w", startsecs=0.1, autorestart=True))
    drive(sup, clock, lambda: len(spawner.times("w")) == 3)
    assert one(sup).restarts == 2
