"""The status bar shows the last code reload, and says so when a program fails after it."""

from __future__ import annotations

import dataclasses

from textual.app import App, ComposeResult

from console.broker.health import BrokerHealth
from console.snapshot import DashboardData
from console.supervision import ProcessSnapshot, ProcessState
from console.ui.statusbar import StatusBar

HEALTH = BrokerHealth("connected", None, 0.4, "7.0.15", 0, None)


def process(name: str, state: ProcessState) -> ProcessSnapshot:
    return ProcessSnapshot(
        name=name,
        group="worker",
        state=state,
        pid=None,
        pgid=None,
        started_at=None,
        uptime=None,
        restarts=1,
        exitstatus=None,
        backoff_remaining=None,
        cpu_percent=None,
        rss_bytes=None,
        description="",
    )


class BarApp(App[None]):
    def compose(self) -> ComposeResult:
        yield StatusBar(id="bar")


async def shown(data: DashboardData, width: int = 160) -> str:
    app = BarApp()
    async with app.run_test(size=(width, 3)) as pilot:
        bar = app.query_one(StatusBar)
        bar.show(data, "test")
        await pilot.pause()
        return str(bar.render())


async def test_the_last_reload_is_shown() -> None:
    data = DashboardData(
        broker_url="redis://127.0.0.1:6379/0",
        broker=HEALTH,
        processes=(process("worker-1", ProcessState.RUNNING),),
        last_reload="reloaded: tasks.py changed",
    )
    text = await shown(data)
    assert "reloaded: tasks.py changed" in text
    assert "failing" not in text
    assert "reloaded" not in await shown(dataclasses.replace(data, last_reload=None))


async def test_a_program_failing_after_a_reload_is_named_on_a_narrow_bar() -> None:
    data = DashboardData(
        broker_url="redis://127.0.0.1:6379/0",
        broker=HEALTH,
        processes=(
            process("worker-1", ProcessState.BACKOFF),
            process("cron", ProcessState.RUNNING),
        ),
        last_reload="reloaded: tasks.py changed",
    )
    text = await shown(data, width=80)
    assert "reloaded: tasks.py changed, worker-1 failing" in text
