"""What one screen update costs: the console's LiveTable against Textual's DataTable.

Run: ``python tests/benchmarks/bench_render.py [--updates N]``.
Four tables shaped like the console's (3 processes x 8 columns, 20 queues x 6, 4 active tasks x 5
with new task ids on every update, 2 workers x 7), 2 x 2 on a headless 140x40 screen, are given
N busy updates (depths, counters and CPU moving, new tasks) and N quiet ones (nothing changed).
Then the same with DataTable in place of LiveTable, updated the way a live table has to be (changed
cells through ``update_cell``, a new set of rows through ``clear`` + ``add_row``). Prints the CPU
milliseconds per update, the frame it causes included, and the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from collections.abc import Sequence

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))

from rich.text import Text
from textual.app import App, ComposeResult
from textual.containers import Grid as Layout
from textual.widgets import DataTable

from console.ui.livetable import Cell, LiveTable

SIZE = (140, 40)
Rows = list[tuple[str, list[Cell]]]
COLUMNS = {
    "processes": ("program", "state", "pid", "uptime", "rst", "cpu", "mem", "info"),
    "queues": ("queue", "depth", "in/s", "out/s", "trend", "drain"),
    "tasks": ("task", "id", "worker", "run", "args"),
    "workers": ("worker", "status", "where", "act", "done", "failed", "pool"),
}


def busy(n: int) -> dict[str, Rows]:
    """Update ``n`` of a busy cluster."""
    running = Text("RUNNING", "bold green")
    return {
        "processes": [
            (f"worker-{k}", [f"worker-{k}", running, str(4100 + k), "2h15m", "0",
                             f"{(n + k) % 50}%", "96.0M", ""])
            for k in range(1, 4)
        ],
        "queues": [
            (f"q{i:02d}", [f"q{i:02d}", str((n * 7 + i) % 500 if i < 3 else 0), str(n % 9),
                           "3.0", "▁▂▃▄▅▆▇█", "-"])
            for i in range(20)
        ],
        "tasks": [
            (uid, ["bench.tick", uid[:8], f"w-{k % 2 + 1}", "0s", "()"])
            for k, uid in enumerate(uuid.uuid4().hex for _ in range(4))
        ],
        "workers": [
            (f"w-{k}@host", [f"w-{k}@host", Text("online", "green"), "local", "2",
                             str(1000 * n + k), "0", "2"])
            for k in (1, 2)
        ],
    }  # fmt: skip


class DataTableSync(DataTable[Cell]):
    """The baseline: a DataTable given the same rows, changed cells updated in place."""

    def set_columns(self, columns: Sequence[tuple[str, str]]) -> None:
        self.clear(columns=True)
        for key, label in columns:
            self.add_column(label, key=key)

    def sync(self, rows: Rows) -> None:
        if [str(k.value) for k in self.rows] != [key for key, _ in rows]:
            self.clear()
            for key, cells in rows:
                self.add_row(*cells, key=key)
            return
        columns = [str(c.value) for c in self.columns]
        for key, cells in rows:
            for column, cell in zip(columns, cells, strict=True):
                if self.get_cell(key, column) != cell:
                    self.update_cell(key, column, cell, update_width=True)


class TablesApp(App[None]):
    """Four tables of one kind, 2 x 2."""

    CSS = """
    #layout { grid-size: 2 2; }
    LiveTable, DataTable { border: round $primary; height: 1fr; width: 1fr; }
    """

    def __init__(self, kind: type[LiveTable] | type[DataTableSync]) -> None:
        super().__init__()
        self.kind = kind

    def compose(self) -> ComposeResult:
        with Layout(id="layout"):
            for name in COLUMNS:
                yield self.kind(id=name)

    def on_mount(self) -> None:
        for name, labels in COLUMNS.items():
            table = self.query_one(f"#{name}", self.kind)
            table.set_columns([(label, label) for label in labels])

    def show(self, data: dict[str, Rows]) -> None:
        for name, rows in data.items():
            self.query_one(f"#{name}", self.kind).sync(rows)


async def measure(kind: type[LiveTable] | type[DataTableSync], updates: int) -> dict[str, float]:
    """CPU ms per update, busy and quiet, the frames included."""
    app = TablesApp(kind)
    out = {}
    async with app.run_test(size=SIZE) as pilot:
        app.show(busy(0))
        await pilot.pause(0.3)
        quiet = busy(0)
        for label, make in (("quiet", lambda n: quiet), ("busy", busy)):
            began = time.process_time()
            for n in range(updates):
                app.show(make(n + 1))
                await pilot.pause()
            await pilot.pause()
            out[label] = 1000 * (time.process_time() - began) / updates
    return out


def main() -> None:
    """Measure LiveTable, then DataTable, and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=300)
    opts = parser.parse_args()
    grid = asyncio.run(measure(LiveTable, opts.updates))
    base = asyncio.run(measure(DataTableSync, opts.updates))
    print(f"{opts.updates} updates of four console-shaped tables at {SIZE[0]}x{SIZE[1]}, "
          "CPU ms per update (frame included):")  # fmt: skip
    print(f"{'tables':10} {'busy':>7} {'quiet':>7}")
    for name, got in (("LiveTable", grid), ("DataTable", base)):
        print(f"{name:10} {got['busy']:7.2f} {got['quiet']:7.2f}")
    print(f"LiveTable / DataTable: busy {grid['busy'] / base['busy']:.2f}x, "
          f"quiet {grid['quiet'] / base['quiet']:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
