"""Narrow screens: no value is cut, hidden columns are announced and reachable, the footer fits."""

from __future__ import annotations

import pytest
from textual.widgets._footer import FooterKey

from console.ui.app import ConsoleApp
from console.ui.demo import DemoSource
from console.ui.livetable import PAD
from console.ui.tables import ProcessTable, QueueTable, SyncTable, TaskTable
from console.ui.workers import WorkerTable
from tests.ui.test_keys import settled
from tests.waiting import until


@pytest.mark.parametrize("size", [(80, 24), (100, 30), (200, 50)])
async def test_every_shown_value_fits_and_hidden_columns_are_announced(
    size: tuple[int, int],
) -> None:
    app = ConsoleApp(DemoSource("main"), live=False)
    async with app.run_test(size=size) as pilot:
        await settled(app, pilot)
        for table in app.query(SyncTable):
            room = table.scrollable_content_region.width
            width = table._line_width - PAD  # the last column's trailing blank may be cut
            assert width <= room, f"{table.id}: {width} > {room}"
            hidden = table.hidden_columns
            assert ("cols: z" in str(table.border_subtitle)) == (hidden > 0), table.id
        if size == (200, 50):
            assert all(t.hidden_columns == 0 for t in app.query(SyncTable))


async def test_sort_visits_only_the_columns_shown() -> None:
    app = ConsoleApp(DemoSource("main"), live=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settled(app, pilot)
        table = app.query_one(ProcessTable)
        assert table.hidden_columns > 0
        shown = {label for _, label in table._labels}
        seen = []
        for _ in range(len(table.COLUMNS) + 1):
            await pilot.press("o")
            if table.sort_index is not None:
                seen.append(table.COLUMNS[table.sort_index].label)
        assert seen and set(seen) <= shown, (seen, shown)


async def test_z_shows_the_focused_table_alone_with_every_column() -> None:
    app = ConsoleApp(DemoSource("main"), live=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settled(app, pilot)
        await pilot.press("tab", "tab", "tab")  # the workers
        workers = app.query_one(WorkerTable)
        assert app.focused is workers and workers.hidden_columns > 0
        await pilot.press("z")
        await until(pilot, lambda: workers.hidden_columns == 0, "every column of the workers")
        assert {"done", "failed", "pool"} <= {label for _, label in workers._labels}
        for other in (ProcessTable, QueueTable, TaskTable):
            assert not app.query_one(other).display
        await pilot.press("z")
        await until(
            pilot,
            lambda: all(t.display for t in app.query(SyncTable)) and workers.hidden_columns > 0,
            "every table back, the workers' columns fitted again",
        )


@pytest.mark.parametrize("tabs", [0, 1, 2, 3])
async def test_the_footer_never_cuts_a_word_at_80_columns(tabs: int) -> None:
    app = ConsoleApp(DemoSource("main"), live=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settled(app, pilot)
        await pilot.press(*["tab"] * tabs)
        await pilot.pause(0.1)
        keys = [k for k in app.screen.query(FooterKey) if k.display]
        assert keys and all(k.region.right <= 80 for k in keys), [
            (k.description, k.region) for k in keys
        ]
        assert any(k.description == "quit" for k in keys)
