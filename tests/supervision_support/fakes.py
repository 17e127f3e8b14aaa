"""Deterministic stand-ins for tests: a manual clock and a spawner that
replays process histories without starting any process."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from console.supervision.model import ProgramConfig
from console.supervision.supervisor import Supervisor


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        """The current fake time."""
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += seconds


@dataclass
class Behaviour:
    """How a fake process behaves: when it exits by itself, and what each signal does."""

    exit_after: float | None = None
    exit_status: int = 0
    ignore: frozenset[int] = frozenset()


@dataclass
class FakeProcess:
    """A process that exits on schedule or on a signal it does not ignore."""

    clock: FakeClock
    behaviour: Behaviour
    pid: int
    started: float
    signals: list[tuple[int, bool]] = field(default_factory=list)
    status: int | None = None

    @property
    def pgid(self) -> int:
        """The fake process group id (the pid)."""
        return self.pid

    @property
    def output_fds(self) -> tuple[int, ...]:
        """No pipes: fakes write no output."""
        return ()

    def poll(self) -> int | None:
        """The exit status once the scheduled exit time has passed or a signal killed it."""
        after = self.behaviour.exit_after
        if self.status is None and after is not None and self.clock() >= self.started + after:
            self.status = self.behaviour.exit_status
        return self.status

    def send_signal(self, signum: int, *, group: bool) -> None:
        """Record the signal; exit of it unless the behaviour ignores it (never SIGKILL)."""
        self.signals.append((signum, group))
        if self.status is None and (
            signum == signal.SIGKILL or signum not in self.behaviour.ignore
        ):
            self.status = -signum


class FakeSpawner:
    """Spawns FakeProcess objects; ``behaviours[name]`` decides how each program behaves."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.behaviours: dict[str, Behaviour] = {}
        self.spawned: list[tuple[str, float, FakeProcess]] = []
        self._next_pid = 100

    def spawn(self, config: ProgramConfig) -> FakeProcess:
        """A new fake process behaving as ``behaviours[config.name]`` says."""
        self._next_pid += 1
        behaviour = self.behaviours.get(config.name, Behaviour())
        process = FakeProcess(self.clock, behaviour, self._next_pid, self.clock())
        self.spawned.append((config.name, self.clock(), process))
        return process

    def close(self) -> None:
        """Nothing to release."""

    def times(self, name: str) -> list[float]:
        """When each process of ``name`` was spawned."""
        return [when for who, when, _ in self.spawned if who == name]

    def last(self, name: str) -> FakeProcess:
        """The newest process of ``name``."""
        return [p for who, _, p in self.spawned if who == name][-1]


def make_supervisor(
    wall_clock: Callable[[], float] = time.time,
) -> tuple[Supervisor, FakeClock, FakeSpawner]:
    """A supervisor on a fake clock and spawner (and ``wall_clock`` for the times it shows)."""
    clock = FakeClock()
    spawner = FakeSpawner(clock)
    sup = Supervisor(clock=clock, wall_clock=wall_clock, spawner=spawner, tick_interval=0.005)
    return sup, clock, spawner


def drive(
    sup: Supervisor,
    clock: FakeClock,
    until: Callable[[], bool],
    step: float = 0.05,
    limit: float = 120.0,
) -> None:
    """Tick and advance the clock until ``until()`` holds; AssertionError after ``limit`` fake s."""
    end = clock() + limit
    sup.tick()
    while not until():
        if clock() >= end:
            raise AssertionError("condition not reached in fake time")
        clock.advance(step)
        sup.tick()


def program(name: str, **options: object) -> ProgramConfig:
    """A program config with a dummy command."""
    return ProgramConfig(name=name, command=["fake", name], **options)  # type: ignore[arg-type]
