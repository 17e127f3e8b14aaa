"""Keys reach the engine: driven through Pilot against the demo source."""

from __future__ import annotations

from console.ui.app import ConsoleApp
from console.ui.demo import DemoSource
from console.ui.tables import ProcessTable, QueueTable, WorkerTable


async def test_tables_show_the_polled_data() -> None:
    source = DemoSource("main")
    app = ConsoleApp(source, live=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        processes = app.query_one(ProcessTable)
        assert processes.row_count == 3
        assert str(processes.get_cell("worker-1", "state")) == "RUNNING"
        assert app.query_one(QueueTable).get_cell("events.process_event", "depth") == "1204"
        assert str(app.query_one(WorkerTable).get_cell("batch@ops-2", "where")) == "remote"


async def test_action_keys_call_the_engine() -> None:
    source = DemoSource("main")
    app = ConsoleApp(source, live=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        await pilot.press("down", "r", "plus", "minus", "c")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "restarting worker-2" in source.actions
        assert "scaling +1" in source.actions
        assert "scaling -1" in source.actions
        assert "toggling cron" in source.actions
        await pilot.press("q")
        await app.workers.wait_for_complete()
        assert source.actions[-1] == "shutdown"
