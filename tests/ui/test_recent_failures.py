"""Recent failures: kept from the task events, bounded, filterable, and counted for status."""

from __future__ import annotations

from dataclasses import replace

from console.cluster import TaskInfo
from console.failures import RecentFailures, failures_since
from console.ui.app import ConsoleApp
from console.ui.demo import DemoSource, demo_data
from console.ui.failures import FailuresScreen, FailureTable
from console.ui.screens import TaskDetailScreen
from tests.ui.test_keys import settled
from tests.waiting import until


def test_failures_are_kept_newest_first_bounded_and_without_tracebacks() -> None:
    base = demo_data("main").active_tasks[2]  # has an exception and a traceback
    keep = RecentFailures(limit=3)
    seen: tuple[TaskInfo, ...] = ()
    for n in range(5):
        failed = replace(base, uuid=f"u{n}", state="FAILURE", finished=1000.0 + n)
        seen = keep.update([failed, replace(base, uuid=f"ok{n}", state="SUCCESS")])
    assert [t.uuid for t in seen] == ["u4", "u3", "u2"]
    assert all(t.traceback is None and t.exception for t in seen)
    assert keep.update([]) == seen  # a failure that left the recent tasks stays
    assert failures_since(seen, 1003.0) == 2


async def test_f_lists_failures_filters_them_and_enter_shows_one() -> None:
    source = DemoSource("main")
    app = ConsoleApp(source, live=False)
    async with app.run_test(size=(120, 30)) as pilot:
        await settled(app, pilot)
        await pilot.press("F")
        await until(pilot, lambda: isinstance(app.screen, FailuresScreen), "failures screen")
        table = app.screen.query_one(FailureTable)
        assert table.row_keys() == ["9a0c11d2e3f44b55", "1b2c3d4e5f60718a"]  # newest first
        assert str(table.get_cell("1b2c3d4e5f60718a", "exception")) == "KeyError('id')"
        await pilot.press("slash", *"batch", "enter")
        await until(pilot, lambda: table.row_keys() == ["1b2c3d4e5f60718a"], "filtered")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, TaskDetailScreen), "task detail")
        screen = app.screen
        assert isinstance(screen, TaskDetailScreen)
        assert screen.task_info.state == "FAILURE" and screen.task_info.worker == "batch@ops-2"
