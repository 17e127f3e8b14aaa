"""`+` and `-` scale the selected process's group, and say which."""

from __future__ import annotations

from dataclasses import replace

from textual.pilot import Pilot

from console.settings import WorkerGroup
from console.ui.app import ConsoleApp
from console.ui.demo import DemoSource
from console.ui.tables import ProcessTable
from tests.ui.test_keys import settled
from tests.waiting import until


async def select(app: ConsoleApp, pilot: Pilot[None], name: str) -> None:
    """Move the process table's cursor to ``name``."""
    table = app.query_one(ProcessTable)
    table.focus()
    await pilot.press("home")
    for _ in range(table.row_count):
        if table.selected_key() == name:
            return
        await pilot.press("down")
    assert table.selected_key() == name


async def test_plus_and_minus_act_on_the_selected_group_and_name_it() -> None:
    source = DemoSource("fatal")  # worker-1, worker-2, cron and ingest-1
    groups = (WorkerGroup(), WorkerGroup(name="ingest"))
    source.settings = replace(source.settings, worker_groups=groups)
    app = ConsoleApp(source, live=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await settled(app, pilot)
        await select(app, pilot, "ingest-1")
        await pilot.press("plus")
        await until(pilot, lambda: len(source.actions) == 1, "a scale of the ingest group")
        await select(app, pilot, "worker-2")
        await pilot.press("minus")
        await until(pilot, lambda: len(source.actions) == 2, "a scale of the worker group")
        await select(app, pilot, "cron")  # not a worker group: the first group
        await pilot.press("plus")
        await until(pilot, lambda: len(source.actions) == 3, "a scale from cron")
        assert source.actions == ["ingest: scaling +1", "worker: scaling -1", "worker: scaling +1"]
        await until(
            pilot,
            lambda: any(n.message == "ingest: scaling +1" for n in app._notifications),
            "the message naming the group",
        )
