"""The UI answers keys while a spawn holds the supervisor's lock."""

from __future__ import annotations

import threading
import time

from console.supervision.model import ProgramConfig
from console.supervision.supervisor import Supervisor
from console.ui.app import ConsoleApp
from console.ui.demo import DemoSource
from console.ui.screens import LogScreen
from tests.supervision_support.fakes import FakeClock, FakeProcess, FakeSpawner, program
from tests.ui.test_keys import settled, until

HOLD = 5.0


class SlowSpawner(FakeSpawner):
    """A spawner whose spawn of ``slow`` takes up to HOLD seconds, inside the supervisor's lock."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock)
        self.entered = threading.Event()
        self.release = threading.Event()

    def spawn(self, config: ProgramConfig) -> FakeProcess:
        """Spawn; the ``slow`` program blocks until released or HOLD seconds have passed."""
        if config.name == "slow":
            self.entered.set()
            self.release.wait(HOLD)
        return super().spawn(config)


class SupervisedDemo(DemoSource):
    """The demo's data, with the output of a real supervisor's programs."""

    def __init__(self, supervisor: Supervisor) -> None:
        super().__init__("main")
        self.supervisor = supervisor

    def output(self, name: str, last: int | None = None, stamps: bool = False) -> list[str]:
        """The supervisor's buffer of ``name``."""
        return self.supervisor.output(name, last, stamps)


async def test_keys_are_answered_while_a_spawn_holds_the_supervisor_lock() -> None:
    clock = FakeClock()
    spawner = SlowSpawner(clock)
    sup = Supervisor(clock=clock, spawner=spawner)
    for name in ("worker-1", "worker-2", "cron"):
        sup.add_program(program(name))
    sup.tick()
    sup.add_program(program("slow"))
    ticker = threading.Thread(target=sup.tick)  # spawns "slow" inside the lock
    app = ConsoleApp(SupervisedDemo(sup), live=False)
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await settled(app, pilot)
            ticker.start()
            assert spawner.entered.wait(5)
            held_since = time.monotonic()
            await pilot.press("down", "l")  # the log pane, then the log screen, read output
            await until(pilot, lambda: isinstance(app.screen, LogScreen), "log screen", 4.0)
            answered = time.monotonic() - held_since
            assert ticker.is_alive() and not spawner.release.is_set(), "the lock was let go"
            print(f"log screen shown {answered:.3f}s into a {HOLD:g}s hold of the lock")
    finally:
        spawner.release.set()
        if ticker.is_alive():
            ticker.join(10)
        sup.shutdown(timeout=1)
