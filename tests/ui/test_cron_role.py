"""The processes table shows a running cron's coordination role next to its name."""

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


async def test_cron_role_next_to_its_name() -> None:
    app = ProcessesApp()
    async with app.run_test(size=(100, 12)) as pilot:
        table = app.query_one(ProcessTable)
        table.show([snapshot("cron", "cron", "standby", 10), snapshot("worker-1", "w", None, 11)])
        await pilot.pause()
        assert table.get_cell("cron", "program") == "cron (standby)"
        assert table.get_cell("worker-1", "program") == "worker-1"
        table.show([snapshot("cron", "cron", "leader", 10), snapshot("worker-1", "w", None, 11)])
        await pilot.pause()
        assert table.get_cell("cron", "program") == "cron (leader)"
