"""``q`` with task events off (``CONSOLE_EVENTS = "workers"``): the question about running tasks
comes from the workers' own heartbeat counts, or says that the console cannot know."""

from __future__ import annotations

from dataclasses import replace

from textual.widgets import Label

from console.snapshot import DashboardData
from console.ui.app import ConsoleApp
from console.ui.demo import DemoSource
from console.ui.modals import QuitScreen
from tests.ui.test_keys import settled
from tests.waiting import until


class WorkersEventsSource(DemoSource):
    """The demo cluster as a console subscribed to worker events only: no active tasks, and
    each worker's ``active`` as its last heartbeat told (``busy`` for this console's own)."""

    def __init__(self, busy: int, remote_busy: int = 5, own_online: bool = True) -> None:
        super().__init__("main")
        self.busy = busy
        self.remote_busy = remote_busy
        self.own_online = own_online

    def poll(self) -> DashboardData:
        """The frozen data, seen without task events."""
        data = super().poll()
        workers = []
        for worker in data.workers:
            if worker.hostname in data.remote_workers:
                workers.append(replace(worker, active=self.remote_busy))
            else:
                own = replace(worker, active=self.busy, online=self.own_online)
                workers.append(own)
                self.busy = 0  # the whole count on the first own worker
        return replace(data, events="workers", active_tasks=(), workers=tuple(workers))


def question(app: ConsoleApp) -> str:
    """The quit dialog's question line."""
    return str(app.screen.query_one(".question", Label).render())


async def test_running_tasks_reported_by_heartbeats_are_asked_about() -> None:
    source = WorkersEventsSource(busy=3)
    app = ConsoleApp(source, live=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await settled(app, pilot)
        await pilot.press("q")
        await until(pilot, lambda: isinstance(app.screen, QuitScreen), "the quit dialog")
        assert question(app).startswith("3 tasks are running"), question(app)
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, QuitScreen), "stay")
    assert "shutdown" not in source.actions


async def test_without_task_events_the_console_says_it_cannot_know() -> None:
    source = WorkersEventsSource(busy=0)
    app = ConsoleApp(source, live=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await settled(app, pilot)
        await pilot.press("q")
        await until(pilot, lambda: isinstance(app.screen, QuitScreen), "the quit dialog")
        assert "may be running" in question(app) and "workers" in question(app), question(app)
        await pilot.press("escape")
    assert "shutdown" not in source.actions


async def test_no_own_worker_online_quits_without_asking() -> None:
    source = WorkersEventsSource(busy=0, own_online=False)
    app = ConsoleApp(source, live=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await settled(app, pilot)
        await pilot.press("q")
        await until(pilot, lambda: "shutdown" in source.actions, "a shutdown without a question")
