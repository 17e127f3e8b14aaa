"""LiveTable through Pilot: cursor by key, keys and mouse, re-rendering only what changed."""

from __future__ import annotations

from rich.text import Text
from textual.app import App, ComposeResult

from console.ui.livetable import LiveTable


class TableApp(App[None]):
    """One focused grid of two columns, recording the messages it sends."""

    CSS = "LiveTable { height: 10; }"

    def __init__(self) -> None:
        super().__init__()
        self.highlighted: list[str] = []
        self.selected: list[str] = []

    def compose(self) -> ComposeResult:
        yield LiveTable(id="grid")

    def on_mount(self) -> None:
        grid = self.query_one(LiveTable)
        grid.set_columns([("name", "name"), ("n", "count")])
        grid.focus()

    def on_live_table_row_highlighted(self, message: LiveTable.RowHighlighted) -> None:
        self.highlighted.append(message.key)

    def on_live_table_row_selected(self, message: LiveTable.RowSelected) -> None:
        self.selected.append(message.key)


def rows(*names: str, count: int = 0) -> list[tuple[str, list[str | Text]]]:
    return [(name, [name, str(count)]) for name in names]


def line(grid: LiveTable, y: int) -> str:
    return grid.render_line(y).text


async def test_only_changed_rows_are_rendered_again() -> None:
    app = TableApp()
    async with app.run_test(size=(40, 12)) as pilot:
        grid = app.query_one(LiveTable)
        grid.sync(rows("a", "b", "c"))
        await pilot.pause()
        before = [grid.render_line(y) for y in (1, 2, 3)]
        grid.sync([("a", ["a", "0"]), ("b", ["b", "7"]), ("c", ["c", "0"])])
        await pilot.pause()
        after = [grid.render_line(y) for y in (1, 2, 3)]
        assert after[0] is before[0] and after[2] is before[2]
        assert after[1] is not before[1]
        assert line(grid, 2).split() == ["b", "7"]
        assert grid.get_cell("b", "n") == "7"


async def test_cursor_stays_on_its_key_and_reports_moves() -> None:
    app = TableApp()
    async with app.run_test(size=(40, 12)) as pilot:
        grid = app.query_one(LiveTable)
        grid.sync(rows("a", "b", "c"))
        await pilot.press("down")
        await pilot.pause()
        assert grid.selected_key() == "b"
        grid.sync(rows("z", "a", "b", "c"))  # a row above it arrives
        await pilot.pause()
        assert grid.selected_key() == "b" and grid.cursor_row == 2
        grid.sync(rows("z", "a", "c"))  # its row goes: the cursor lands on a neighbour
        await pilot.pause()
        assert grid.selected_key() == "c"
        assert app.highlighted[-1] == "c"


async def test_keys_move_scroll_and_select() -> None:
    app = TableApp()
    names = [f"row{n:02d}" for n in range(40)]
    async with app.run_test(size=(40, 12)) as pilot:
        grid = app.query_one(LiveTable)
        grid.sync(rows(*names))
        await pilot.press("end")
        await pilot.pause()
        assert grid.selected_key() == "row39"
        visible = [line(grid, y).split()[0] for y in range(1, grid.size.height)]
        assert "row39" in visible
        assert line(grid, 0).split() == ["name", "count"]  # the header stays put
        await pilot.press("home", "pagedown")
        await pilot.pause()
        assert 0 < grid.cursor_row < 40
        await pilot.press("enter")
        await pilot.pause()
        assert app.selected == [grid.selected_key()]


async def test_a_click_moves_the_cursor_and_a_second_selects() -> None:
    app = TableApp()
    async with app.run_test(size=(40, 12)) as pilot:
        grid = app.query_one(LiveTable)
        grid.sync(rows("a", "b", "c"))
        await pilot.pause()
        await pilot.click(LiveTable, offset=(2, 3))  # header on line 0, "c" on line 3
        await pilot.pause()
        assert grid.selected_key() == "c" and app.selected == []
        await pilot.click(LiveTable, offset=(2, 3))
        await pilot.pause()
        assert app.selected == ["c"]


async def test_columns_widen_for_content_and_cell_styles_survive() -> None:
    app = TableApp()
    async with app.run_test(size=(60, 12)) as pilot:
        grid = app.query_one(LiveTable)
        fatal = Text("FATAL", style="bold red")
        grid.sync([("a", ["a", "1"]), ("b", ["b", fatal])])
        grid.sync([("a", ["a", "1"]), ("b", ["b-much-longer-name", fatal])])
        await pilot.pause()
        header, row = line(grid, 0), line(grid, 2)
        assert header.index("count") == row.index("FATAL") > len("b-much-longer-name")
        styles = [seg.style for seg in grid.render_line(2) if seg.text == "FATAL"]
        assert styles and styles[0] is not None and styles[0].bold


async def test_rows_that_fit_keep_the_virtual_size_so_no_layout_is_needed() -> None:
    app = TableApp()
    async with app.run_test(size=(40, 12)) as pilot:
        grid = app.query_one(LiveTable)
        grid.sync(rows("a", "b", "c"))
        await pilot.pause()
        fitted = grid.virtual_size
        assert fitted.height == grid.scrollable_content_region.height
        grid.sync(rows("a", "b", "c", "d", "e"))
        await pilot.pause()
        assert grid.virtual_size == fitted
        grid.sync(rows(*[f"row{n:02d}" for n in range(40)]))
        await pilot.pause()
        assert grid.virtual_size.height == 41  # header + rows: now it scrolls
