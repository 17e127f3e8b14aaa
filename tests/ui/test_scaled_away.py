"""The screen keeps refreshing when the selected process is scaled away or a poll fails."""

from __future__ import annotations

from dataclasses import replace

from console.snapshot import DashboardData
from console.supervision.supervisor import Supervisor
from console.ui.app import ConsoleApp
from console.ui.demo import DemoSource
from console.ui.tables import ProcessTable
from tests.supervision_support.fakes import drive, make_supervisor, program
from tests.ui.test_keys import settled
from tests.waiting import until


class SupervisedSource(DemoSource):
    """The demo's cluster with the processes and output of a real supervisor (fake children)."""

    def __init__(self, supervisor: Supervisor) -> None:
        super().__init__("main")
        self.settings = replace(self.settings, refresh_interval=0.1)
        self.supervisor = supervisor
        self.polls = 0

    def poll(self) -> DashboardData:
        """The demo's data with the supervisor's process table."""
        self.polls += 1
        return replace(super().poll(), processes=tuple(self.supervisor.snapshot()))

    def output(self, name: str, last: int | None = None, stamps: bool = False) -> list[str]:
        """The supervisor's buffer (KeyError once the program is gone, as the runtime's)."""
        return self.supervisor.output(name, last, stamps)


async def test_removing_the_selected_process_moves_the_cursor_and_keeps_refreshing() -> None:
    sup, clock, _spawner = make_supervisor()
    for name in ("worker-1", "worker-2", "worker-3"):
        sup.add_program(program(name))
    drive(sup, clock, lambda: all(p.state == "RUNNING" for p in sup.snapshot()), limit=10)
    source = SupervisedSource(sup)
    app = ConsoleApp(source, live=True)
    try:
        async with app.run_test(size=(200, 50)) as pilot:
            await settled(app, pilot)
            table = app.query_one(ProcessTable)
            await pilot.press("j")
            await until(pilot, lambda: app._log_name == "worker-2", "worker-2 followed")
            sup.remove_program("worker-2")  # what scaling down does to the last process
            drive(sup, clock, lambda: "worker-2" not in [p.name for p in sup.snapshot()])
            await until(pilot, lambda: table.row_keys() == ["worker-1", "worker-3"], "row gone")
            await until(pilot, lambda: table.selected_key() == "worker-3", "cursor on neighbour")
            await until(pilot, lambda: app._log_name == "worker-3", "log follows the cursor")
            polls = source.polls
            await until(pilot, lambda: source.polls >= polls + 3, "refresh goes on")
            clock.advance(5)  # uptime moves on: a later poll must show it
            await until(
                pilot,
                lambda: app.last_data is not None and (app.last_data.processes[0].uptime or 0) >= 5,
                "fresh data on screen",
            )
            errors = [n.message for n in app._notifications if "no program" in n.message]
            assert errors == []
    finally:
        sup.shutdown(timeout=1)


class FlakySource(DemoSource):
    """Demo data whose polls fail ``failures`` times in a row first."""

    def __init__(self, failures: int) -> None:
        super().__init__("main")
        self.settings = replace(self.settings, refresh_interval=0.1)
        self.failures = failures
        self.polls = 0

    def poll(self) -> DashboardData:
        """Fail at first, then the demo's data."""
        self.polls += 1
        if self.polls <= self.failures:
            raise ConnectionError("broker went away")
        return super().poll()


async def test_failing_polls_are_reported_once_and_the_refresh_goes_on() -> None:
    source = FlakySource(failures=5)
    app = ConsoleApp(source, live=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.last_data is not None, "a poll after the failures", 10)
        failures = [n.message for n in app._notifications if "broker went away" in n.message]
        assert len(failures) == 1, failures
        assert source.polls >= 6
