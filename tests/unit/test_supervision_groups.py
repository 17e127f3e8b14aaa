"""Scaling, rolling restarts and the UI-free import contract of the supervisor."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable

import pytest

from console.supervision.model import ProcessSnapshot, ProcessState, ProgramConfig
from console.supervision.supervisor import RollingRestartError, Supervisor
from tests.supervision_support.fakes import Behaviour, FakeClock, drive, make_supervisor, program


def worker(n: int) -> ProgramConfig:
    return program(f"worker-{n}", group="worker", startsecs=1.0)


def names(sup: Supervisor) -> list[str]:
    return [s.name for s in sup.snapshot()]


def all_running(sup: Supervisor) -> bool:
    return all(s.state is ProcessState.RUNNING for s in sup.snapshot())


def test_scale_up_then_down_stops_the_newest_first() -> None:
    sup, clock, spawner = make_supervisor()
    sup.add_program(program("cron"))
    sup.scale("worker", 3, worker)
    assert names(sup) == ["cron", "worker-1", "worker-2", "worker-3"]
    assert {s.group for s in sup.snapshot()[1:]} == {"worker"}
    drive(sup, clock, lambda: all_running(sup))
    sup.scale("worker", 1, worker)
    states = {s.name: s.state for s in sup.snapshot()}
    assert states["worker-3"] is states["worker-2"] is ProcessState.STOPPING
    assert states["worker-1"] is ProcessState.RUNNING
    assert sup.group_members("worker") == ["worker-1"]
    drive(sup, clock, lambda: names(sup) == ["cron", "worker-1"])
    assert spawner.last("worker-1").signals == []
    sup.scale("worker", 2, worker)
    assert names(sup) == ["cron", "worker-1", "worker-2"]


def test_scale_down_waits_for_a_warm_stop_and_numbers_are_not_reused_meanwhile() -> None:
    sup, clock, spawner = make_supervisor()
    spawner.behaviours["worker-2"] = Behaviour(ignore=frozenset({15}))
    sup.scale("worker", 2, lambda n: program(f"worker-{n}", stopwaitsecs=10.0))
    drive(sup, clock, lambda: all_running(sup))
    sup.scale("worker", 1, worker)
    clock.advance(5)
    sup.tick()
    assert [s.state for s in sup.snapshot()] == [ProcessState.RUNNING, ProcessState.STOPPING]
    sup.scale("worker", 2, worker)  # worker-2 is still stopping: the newcomer is number 3
    assert names(sup) == ["worker-1", "worker-2", "worker-3"]
    drive(sup, clock, lambda: names(sup) == ["worker-1", "worker-3"])
    with pytest.raises(ValueError):
        sup.scale("worker", -1, worker)
    with pytest.raises(ValueError):
        sup.scale("worker", 5, lambda n: program(f"x-{n}", group="other"))


class _Driver:
    """Runs a rolling restart in a thread while this thread moves the fake clock."""

    def __init__(
        self,
        sup: Supervisor,
        clock: FakeClock,
        ready: Callable[[ProcessSnapshot], bool],
        timeout: float = 30.0,
    ) -> None:
        self.error: BaseException | None = None
        self.clock = clock

        def run() -> None:
            try:
                sup.rolling_restart("worker", ready, timeout=timeout)
            except BaseException as exc:
                self.error = exc

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def step(self) -> bool:
        """Advance fake time a little; True while the rolling restart runs."""
        self.clock.advance(0.1)
        self.thread.join(0.002)
        return self.thread.is_alive()

    def finish(self, deadline: float = 20.0) -> None:
        end = time.monotonic() + deadline
        while self.step():
            assert time.monotonic() < end, "rolling restart did not finish"


def test_rolling_restart_goes_one_at_a_time_behind_the_readiness_gate() -> None:
    sup, clock, spawner = make_supervisor()
    sup.scale("worker", 3, worker)
    sup.add_program(program("cron"))
    drive(sup, clock, lambda: all_running(sup))
    first = {n: spawner.last(n) for n in ("worker-1", "worker-2", "worker-3")}
    gate = threading.Event()
    asked: list[ProcessSnapshot] = []

    def ready(snap: ProcessSnapshot) -> bool:
        asked.append(snap)
        return snap.name != "worker-1" or gate.is_set()

    driver = _Driver(sup, clock, ready)
    end = time.monotonic() + 10
    while len([s for s in asked if s.name == "worker-1"]) < 3:
        assert driver.step() and time.monotonic() < end
    # worker-1 is back RUNNING but not ready: nobody else has been touched.
    assert first["worker-1"].signals and not first["worker-2"].signals
    assert not first["worker-3"].signals
    assert all(s.state is ProcessState.RUNNING for s in asked)
    gate.set()
    driver.finish()
    assert driver.error is None
    order = [s.name for s in asked]
    assert order.index("worker-2") > order.index("worker-1")
    assert order[-1] == "worker-3"
    assert all(len(spawner.times(n)) == 2 for n in first)
    assert len(spawner.times("cron")) == 1
    spawned_order = [who for who, _, _ in spawner.spawned[4:]]
    assert spawned_order == ["worker-1", "worker-2", "worker-3"]


def test_rolling_restart_stops_when_a_replacement_goes_fatal() -> None:
    sup, clock, spawner = make_supervisor()
    sup.scale("worker", 2, lambda n: program(f"worker-{n}", startretries=0))
    drive(sup, clock, lambda: all_running(sup))
    spawner.behaviours["worker-1"] = Behaviour(exit_after=0.0, exit_status=1)
    driver = _Driver(sup, clock, lambda snap: True)
    driver.finish()
    assert isinstance(driver.error, RollingRestartError)
    assert "worker-1" in str(driver.error)
    assert not spawner.last("worker-2").signals


def test_supervision_imports_no_ui_and_no_broker() -> None:
    code = (
        "import sys, console.supervision as s\n"
        "s.Supervisor, s.ProgramConfig, s.install_shutdown_signals\n"
        "bad = {'textual', 'celery', 'kombu', 'redis', 'workers'}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
