"""The processes table shows a running cron's coordination role in its info column."""

from __future__ import annotations

from textual.app import App, ComposeResult

from console.supervision import ProcessSnapshot, ProcessState
from console.ui.tables import ProcessTable


class ProcessesApp(App[None]):
    """The processes table alone, wide enough for every column."""

    def compose(self) -> ComposeResult:
        yield ProcessTable(id="processes")


def snapshot(name: str, group: str, role: str | None, pid: int) -> ProcessSnapshot:
    return ProcessSnapshot(
        *(name, group, ProcessState.RUNNING, pid, pid, 0.0, 12.0, 0, None, None, 1.0, 1000),
        description=f"pid {pid}, uptime 0:00:12",
        role=role,
    )


async def test_cron_role_in_the_info_column() -> None:
    app = ProcessesApp()
    async with app.run_test(size=(100, 12)) as pilot:
        table = app.query_one(ProcessTable)
        table.show([snapshot("cron", "cron", "standby", 10), snapshot("worker-1", "w", None, 11)])
        await pilot.pause()
        assert table.get_cell("cron", "info") == "standby"
        assert table.get_cell("worker-1", "info") == ""
        table.show([snapshot("cron", "cron", "leader", 10), snapshot("worker-1", "w", None, 11)])
        await pilot.pause()
        assert table.get_cell("cron", "info") == "leader"
