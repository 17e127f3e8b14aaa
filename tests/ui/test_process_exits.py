"""The info column names a live process's last unexpected exit; enter lists its last exits."""

from __future__ import annotations

import io
import signal
import time
from dataclasses import replace

from rich.console import Console

from console.snapshot import DashboardData
from console.supervision.model import ExitRecord
from console.ui.app import ConsoleApp
from console.ui.demo import DemoSource
from console.ui.process_detail import ProcessDetailScreen, process_details
from console.ui.tables import ProcessTable
from tests.ui.test_keys import settled
from tests.waiting import until


class KilledDemo(DemoSource):
    """The demo, where worker-1 was SIGKILLed 12 s ago and restarted, after one warm stop."""

    def poll(self) -> DashboardData:
        """The demo's data with worker-1's exits."""
        data = super().poll()
        now = time.time()
        exits = (
            ExitRecord(now - 600, -signal.SIGTERM, 3600.0, True),
            ExitRecord(now - 12, -signal.SIGKILL, 41.0, False),
        )
        first = replace(data.processes[0], exits=exits, restarts=1)
        return replace(data, processes=(first, *data.processes[1:]), taken_at=now)


async def test_info_column_and_process_detail_show_the_exits() -> None:
    app = ConsoleApp(KilledDemo("main"), live=False)
    async with app.run_test(size=(160, 40)) as pilot:
        await settled(app, pilot)
        table = app.query_one(ProcessTable)
        assert table.selected_key() == "worker-1"
        info = str(table.get_cell("worker-1", "info"))
        assert info in ("killed by SIGKILL 12s ago", "killed by SIGKILL 13s ago"), info
        assert str(table.get_cell("worker-2", "info")) == ""  # never exited
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ProcessDetailScreen), "detail")
        screen = app.screen
        assert isinstance(screen, ProcessDetailScreen)
        console = Console(width=160, record=True, file=io.StringIO())
        console.print(process_details(screen.process, time.time()))
        body = console.export_text()
        assert "last 2 exits" in body and "killed by SIGKILL" in body and "unexpected" in body
        assert body.index("killed by SIGKILL") < body.index("killed by SIGTERM")  # newest first
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, ProcessDetailScreen), "back")


async def test_t_puts_the_arrival_time_before_every_output_line() -> None:
    from console.ui.app import LOG_TAIL
    from tests.supervision_support.fakes import make_supervisor, program
    from tests.ui.test_ui_never_blocks import SupervisedDemo

    sup, _clock, _spawner = make_supervisor()
    sup.add_program(program("worker-1"))
    sup._buffers["worker-1"].feed_lines(["first line", "second line"])
    app = ConsoleApp(SupervisedDemo(sup), live=False)
    try:
        async with app.run_test(size=(120, 30)) as pilot:
            await settled(app, pilot)
            assert app._log_lines == ["first line", "second line"]
            await pilot.press("t")
            await until(pilot, lambda: app._log_lines[0].endswith(" first line"), "stamped")
            stamp = app._log_lines[0].split(" ", 1)[0]
            assert len(stamp) == 8 and stamp.count(":") == 2, stamp
            assert sup.output("worker-1", LOG_TAIL) == ["first line", "second line"]
            await pilot.press("t")
            await until(pilot, lambda: app._log_lines == ["first line", "second line"], "plain")
    finally:
        sup.shutdown(timeout=1)
