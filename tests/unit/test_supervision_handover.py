"""Start-first replacement of a running program: the old process stops only once the new one
is ready, the new one takes the name, and a failed replacement leaves the old one alone."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from console.programs import alternate_node_name
from console.supervision.model import ProcessSnapshot, ProcessState, ProgramConfig
from console.supervision.supervisor import RollingRestartError, Supervisor
from tests.supervision_support.fakes import Behaviour, FakeClock, drive, make_supervisor, program


def worker(name: str = "worker-1", **options: object) -> ProgramConfig:
    return program(name, group="worker", startsecs=1.0, **options)


class Replacing:
    """Runs ``replace_running`` in a thread while the test moves the fake clock."""

    def __init__(
        self,
        sup: Supervisor,
        clock: FakeClock,
        config: ProgramConfig,
        ready: Callable[[ProcessSnapshot], bool],
    ) -> None:
        self.error: BaseException | None = None
        self.clock = clock

        def run() -> None:
            try:
                sup.replace_running("worker-1", config, ready, timeout=30)
            except BaseException as exc:
                self.error = exc

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def step(self) -> bool:
        self.clock.advance(0.1)
        self.thread.join(0.002)
        return self.thread.is_alive()

    def finish(self) -> None:
        end = time.monotonic() + 20
        while self.step():
            assert time.monotonic() < end, "the replacement did not finish"


def test_the_old_process_stops_only_after_the_replacement_is_ready() -> None:
    sup, clock, spawner = make_supervisor()
    sup.add_program(worker(), number=1)
    drive(sup, clock, lambda: sup.snapshot()[0].state is ProcessState.RUNNING)
    old = spawner.last("worker-1")
    gate = threading.Event()
    asked: list[ProcessSnapshot] = []

    def ready(snap: ProcessSnapshot) -> bool:
        asked.append(snap)
        return gate.is_set()

    run = Replacing(sup, clock, worker(), ready)
    end = time.monotonic() + 10
    while len(asked) < 3:
        assert run.step() and time.monotonic() < end
    states = {s.name: s.state for s in sup.snapshot()}
    assert states == {"worker-1": ProcessState.RUNNING, "worker-1~new": ProcessState.RUNNING}
    assert old.signals == []  # both run side by side while the new one is not ready
    sup._buffers["worker-1"].feed_lines(["old process"])
    sup._buffers["worker-1~new"].feed_lines(["new process"])
    gate.set()
    run.finish()
    assert run.error is None
    new = spawner.last("worker-1~new")
    assert old.signals and old.signals[0][0] == 15
    drive(sup, clock, lambda: [s.name for s in sup.snapshot()] == ["worker-1"])
    snap = sup.snapshot()[0]
    assert snap.pid == new.pid and snap.state is ProcessState.RUNNING and snap.restarts == 1
    assert sup.group_members("worker") == ["worker-1"]
    assert sup.output("worker-1") == ["new process"]  # the output follows the name


def test_a_failed_replacement_leaves_the_old_process_running() -> None:
    sup, clock, spawner = make_supervisor()
    sup.add_program(worker(), number=1)
    drive(sup, clock, lambda: sup.snapshot()[0].state is ProcessState.RUNNING)
    old = spawner.last("worker-1")
    spawner.behaviours["worker-1~new"] = Behaviour(exit_after=0.0, exit_status=1)
    run = Replacing(sup, clock, worker(startretries=0), lambda snap: True)
    run.finish()
    assert isinstance(run.error, RollingRestartError)
    drive(sup, clock, lambda: [s.name for s in sup.snapshot()] == ["worker-1"])
    assert sup.snapshot()[0].state is ProcessState.RUNNING and old.signals == []


def test_only_a_running_program_is_replaced() -> None:
    sup, _clock, _spawner = make_supervisor()
    sup.add_program(worker(), autostart=False, number=1)
    with pytest.raises(RollingRestartError):
        sup.replace_running("worker-1", worker(), lambda snap: True)


def test_alternate_node_names_swap_between_two() -> None:
    assert alternate_node_name("worker-1@%h") == "worker-1-b@%h"
    assert alternate_node_name("solo") == "solo-b"


def test_a_scale_during_a_replacement_does_not_count_the_replacement() -> None:
    sup, clock, _spawner = make_supervisor()
    sup.add_program(worker(), number=1)
    drive(sup, clock, lambda: sup.snapshot()[0].state is ProcessState.RUNNING)
    gate = threading.Event()
    asked: list[ProcessSnapshot] = []

    def ready(snap: ProcessSnapshot) -> bool:
        asked.append(snap)
        return gate.is_set()

    run = Replacing(sup, clock, worker(), ready)
    end = time.monotonic() + 10
    while not asked:
        assert run.step() and time.monotonic() < end
    assert sup.group_members("worker") == ["worker-1"], "the starting ~new is not a member"
    sup.scale("worker", 2, lambda n: worker(f"worker-{n}"))
    gate.set()
    run.finish()
    assert run.error is None
    drive(sup, clock, lambda: sorted(s.name for s in sup.snapshot()) == ["worker-1", "worker-2"])
    assert sup.group_members("worker") == ["worker-1", "worker-2"]
