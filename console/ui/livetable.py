"""A lean row table for live data: each row's line is rendered once and reused until it changes.

Textual's DataTable drops every rendered cell whenever any cell changes, so a table fed fresh
numbers each second re-renders all of its rows through Rich on every refresh. Here each row keeps
its own rendered :class:`Strip`; an update re-renders only the rows whose cells changed and
repaints only their lines. Rows are chosen with a cursor (keys and mouse), the header stays put.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

Cell = str | Text
PAD = 1  # blank cells on each side of a column


class LiveRow:
    """One row: its key, its cells, and its rendered line (valid for one render generation)."""

    __slots__ = ("cells", "key", "mode", "strip", "strip_gen")

    def __init__(self, key: str, cells: tuple[Cell, ...]) -> None:
        self.key = key
        self.cells = cells
        self.strip: Strip | None = None
        self.strip_gen = -1
        self.mode = ""


class LiveTable(ScrollView, can_focus=True):
    """Rows of cells under a fixed header, with a row cursor."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"table--header", "table--cursor", "table--cursor-blur"}
    DEFAULT_CSS = """
    LiveTable {
        background: $surface;
        color: $foreground;
        & > .table--header { text-style: bold; background: $panel; color: $foreground; }
        &:ansi > .table--header { background: ansi_bright_blue; color: ansi_default; }
        & > .table--cursor {
            background: $block-cursor-background;
            color: $block-cursor-foreground;
            text-style: $block-cursor-text-style;
        }
        & > .table--cursor-blur {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor_up", "up", show=False, tooltip="Cursor up"),
        Binding("down,j", "cursor_down", "down", show=False, tooltip="Cursor down"),
        Binding("pageup", "cursor_page(-1)", "page up", show=False, tooltip="A page up"),
        Binding("pagedown", "cursor_page(1)", "page down", show=False, tooltip="A page down"),
        Binding("home,g", "cursor_home", "first", show=False, tooltip="First row"),
        Binding("end,G", "cursor_end", "last", show=False, tooltip="Last row"),
        Binding("enter", "select_cursor", "select", show=False, tooltip="Choose the row"),
    ]

    class RowMessage(Message):
        """Something happened to the row ``key``."""

        def __init__(self, table: LiveTable, key: str) -> None:
            super().__init__()
            self.table = table
            self.key = key

        @property
        def control(self) -> LiveTable:
            """The table that sent it (for ``@on(..., "#id")``)."""
            return self.table

    class RowHighlighted(RowMessage):
        """The cursor moved to the row ``key``."""

    class RowSelected(RowMessage):
        """Enter (or a click on the cursor row) on the row ``key``."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._labels: tuple[tuple[str, str], ...] = ()  # (key, label) per column
        self._rows: list[LiveRow] = []
        self._index: dict[str, int] = {}
        self._widths: tuple[int, ...] = ()
        self._line_width = 0  # cells in a rendered line: the widths plus their padding
        self._gen = 0
        self._styles: tuple[Style, ...] | None = None
        self._header: Strip | None = None
        self.cursor_row = 0

    # data -----------------------------------------------------------------------------------
    def set_columns(self, columns: Sequence[tuple[str, str]]) -> None:
        """Replace the columns (key, label) and drop every row."""
        self._labels = tuple(columns)
        self._rows, self._index = [], {}
        self.cursor_row = 0
        self._relayout()

    @property
    def row_count(self) -> int:
        """Number of rows."""
        return len(self._rows)

    def row_keys(self) -> list[str]:
        """Every row's key, top to bottom."""
        return [row.key for row in self._rows]

    def get_cell(self, row_key: str, column_key: str) -> Cell:
        """The cell of row ``row_key`` in column ``column_key`` (KeyError when absent)."""
        column = [key for key, _ in self._labels].index(column_key)
        return self._rows[self._index[row_key]].cells[column]

    def selected_key(self) -> str | None:
        """Key of the row under the cursor, if any."""
        if not self._rows:
            return None
        return self._rows[min(self.cursor_row, len(self._rows) - 1)].key

    def sync(self, rows: Sequence[tuple[str, Sequence[Cell]]]) -> None:
        """Show exactly ``rows`` (key, cells), in order; the cursor stays on its row's key."""
        old_key = self.selected_key()
        same_keys = len(rows) == len(self._rows) and all(
            key == row.key for (key, _), row in zip(rows, self._rows, strict=True)
        )
        changed: list[int] = []
        if same_keys:
            for y, ((_, cells), row) in enumerate(zip(rows, self._rows, strict=True)):
                new = tuple(cells)
                if new != row.cells:
                    row.cells, row.strip = new, None
                    changed.append(y)
        else:
            kept = {row.key: row for row in self._rows}
            fresh = []
            for key, cells in rows:
                new = tuple(cells)
                known = kept.get(key)
                fresh.append(
                    known if known is not None and known.cells == new else LiveRow(key, new)
                )
            self._rows = fresh
            self._index = {row.key: y for y, row in enumerate(fresh)}
        if not same_keys or (changed and self._widths != self._measure()):
            self._relayout()
            if old_key in self._index:
                self.cursor_row = self._index[old_key]
            self._clamp_cursor(announce=old_key != self.selected_key())
            return
        for y in changed:
            self.refresh_line(y + 1)

    def _measure(self) -> tuple[int, ...]:
        widths = [cell_len(label) for _, label in self._labels]
        for row in self._rows:
            for i, cell in enumerate(row.cells):
                width = cell.cell_len if isinstance(cell, Text) else cell_len(cell)
                if width > widths[i]:
                    widths[i] = width
        return tuple(widths)

    def _relayout(self) -> None:
        widths = self._measure()
        if widths != self._widths:
            self._widths = widths
            self._line_width = sum(widths) + 2 * PAD * len(widths)
            self._gen += 1
            self._header = None
        self._set_virtual_size()
        self.refresh()

    def _set_virtual_size(self) -> None:
        # A new virtual size costs a layout pass of the whole screen. While the rows fit, the
        # height stays the viewport's, so rows coming and going are only repaints.
        height = max(len(self._rows) + 1, self.scrollable_content_region.height)
        size = Size(self._line_width, height)
        if size != self.virtual_size:
            self.virtual_size = size

    def on_resize(self, event: events.Resize) -> None:
        """Keep the virtual height at least the new viewport's."""
        self._set_virtual_size()

    # cursor ---------------------------------------------------------------------------------
    def move_cursor(self, row: int) -> None:
        """Put the cursor on row number ``row`` (clamped) and bring it into view."""
        self.cursor_row = row
        self._clamp_cursor(announce=True)

    def _clamp_cursor(self, announce: bool) -> None:
        last = max(len(self._rows) - 1, 0)
        self.cursor_row = min(max(self.cursor_row, 0), last)
        self._scroll_to_cursor()
        self.call_after_refresh(self._scroll_to_cursor)  # again once a new height is laid out
        self.refresh()
        key = self.selected_key()
        if announce and key is not None:
            self.post_message(self.RowHighlighted(self, key))

    def _scroll_to_cursor(self) -> None:
        visible = max(self.scrollable_content_region.height - 1, 1)
        top = round(self.scroll_offset.y)
        if self.cursor_row < top:
            self.scroll_to(y=self.cursor_row, animate=False, immediate=True)
        elif self.cursor_row >= top + visible:
            self.scroll_to(y=self.cursor_row - visible + 1, animate=False, immediate=True)

    def action_cursor_up(self) -> None:
        """Cursor one row up."""
        self.move_cursor(self.cursor_row - 1)

    def action_cursor_down(self) -> None:
        """Cursor one row down."""
        self.move_cursor(self.cursor_row + 1)

    def action_cursor_page(self, direction: int) -> None:
        """Cursor a page up (-1) or down (1)."""
        page = max(self.scrollable_content_region.height - 2, 1)
        self.move_cursor(self.cursor_row + direction * page)

    def action_cursor_home(self) -> None:
        """Cursor on the first row."""
        self.move_cursor(0)

    def action_cursor_end(self) -> None:
        """Cursor on the last row."""
        self.move_cursor(len(self._rows) - 1)

    def action_select_cursor(self) -> None:
        """Tell the app which row was chosen."""
        key = self.selected_key()
        if key is not None:
            self.post_message(self.RowSelected(self, key))

    def on_click(self, event: events.Click) -> None:
        """A click puts the cursor on a row; a click on the cursor row selects it."""
        y = event.y - self.gutter.top
        if y < 1:
            return
        row = round(self.scroll_offset.y) + y - 1
        if row >= len(self._rows):
            return
        if row == self.cursor_row:
            self.action_select_cursor()
        else:
            self.move_cursor(row)

    def on_focus(self) -> None:
        """The cursor row changes colour with focus."""
        self.refresh()

    def on_blur(self) -> None:
        """The cursor row changes colour with focus."""
        self.refresh()

    # rendering ------------------------------------------------------------------------------
    def render_lines(self, crop: Region) -> list[Strip]:
        """Work out this frame's styles once, then render the lines."""
        base = self.rich_style
        cursor = self.get_component_rich_style("table--cursor")
        blur = self.get_component_rich_style("table--cursor-blur")
        header = base + self.get_component_rich_style("table--header")
        styles = (base, header, cursor, blur, base + cursor, base + blur)
        if styles != self._styles:
            self._styles = styles
            self._gen += 1
            self._header = None
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        """Line ``y`` of the view: the header, a row, or blank."""
        assert self._styles is not None
        base, header_style, cursor_style, blur_style, cursor_fill, blur_fill = self._styles
        width = self.scrollable_content_region.width
        left = round(self.scroll_offset.x)
        if y == 0:
            if self._header is None:
                self._header = self._line([label for _, label in self._labels], header_style)
            return self._header.crop_extend(left, left + width, header_style)
        index = round(self.scroll_offset.y) + y - 1
        if index >= len(self._rows):
            return Strip.blank(width, base)
        row = self._rows[index]
        mode, over, fill = "", None, base
        if index == self.cursor_row:
            focused = self.has_focus
            mode = "f" if focused else "b"
            over, fill = (cursor_style, cursor_fill) if focused else (blur_style, blur_fill)
        if row.strip is None or row.strip_gen != self._gen or row.mode != mode:
            strip = self._line(row.cells, base)
            if over is not None:  # the cursor's colours win over the cells' own
                strip = Strip(Segment.apply_style(list(strip), post_style=over), strip.cell_length)
            row.strip, row.strip_gen, row.mode = strip, self._gen, mode
        return row.strip.crop_extend(left, left + width, fill)

    def _line(self, cells: Sequence[Cell], style: Style) -> Strip:
        segments: list[Segment] = []
        console = self.app.console
        for cell, width in zip(cells, self._widths, strict=False):
            if isinstance(cell, str):
                segments.append(Segment(" " * PAD + cell, style))
                used = cell_len(cell)
            elif not cell.spans:
                own = cell.style
                own = own if isinstance(own, Style) else console.get_style(own, default=None)
                segments.append(Segment(" " * PAD, style))
                segments.append(Segment(cell.plain, style + own if own else style))
                used = cell.cell_len
            else:
                segments.append(Segment(" " * PAD, style))
                segments.extend(Segment.apply_style(cell.render(console, ""), style))
                used = cell.cell_len
            segments.append(Segment(" " * (width - used + PAD), style))
        return Strip(segments, self._line_width)
