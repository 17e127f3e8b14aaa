"""Every way out of the TUI takes the graceful path and ends the app (and its poll thread)."""

from __future__ import annotations

from dataclasses import replace

from textual.pilot import Pilot

from console.ui.app import ConsoleApp
from console.ui.demo import DemoSource
from console.ui.modals import QuitScreen
from tests.ui.test_keys import palette_offers, settled
from tests.waiting import until


def live_demo(scenario: str) -> DemoSource:
    source = DemoSource(scenario)
    source.settings = replace(source.settings, refresh_interval=0.1)
    return source


async def ended(app: ConsoleApp, pilot: Pilot[None]) -> None:
    await until(pilot, lambda: not app.is_running, "the app ends")
    assert app._stop.is_set(), "the poll thread would keep the process alive"


async def test_palette_quit_stops_everything_like_q() -> None:
    source = live_demo("broker-down")  # no tasks running: no question asked
    app = ConsoleApp(source)
    async with app.run_test(size=(100, 30)) as pilot:
        await settled(app, pilot)
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Quit")
        await until(pilot, palette_offers(app, "quit"), "the palette offering Quit")
        await pilot.press("enter")
        await until(pilot, lambda: "shutdown" in source.actions, "shutdown from the palette")
        await ended(app, pilot)
    assert not app.detached


async def test_ctrl_q_asks_like_q_when_tasks_run_then_stops_everything() -> None:
    source = live_demo("main")
    app = ConsoleApp(source)
    async with app.run_test(size=(100, 30)) as pilot:
        await settled(app, pilot)
        await pilot.press("ctrl+q")
        await until(pilot, lambda: isinstance(app.screen, QuitScreen), "quit dialog")
        await pilot.press("ctrl+q")  # a second press does not stack another dialog
        await pilot.pause()
        assert len([s for s in app.screen_stack if isinstance(s, QuitScreen)]) == 1
        await pilot.press("w")
        await until(pilot, lambda: "shutdown" in source.actions, "warm shutdown")
        await ended(app, pilot)


async def test_ctrl_c_detaches_and_leaves_the_programs_running() -> None:
    source = live_demo("main")
    app = ConsoleApp(source)
    async with app.run_test(size=(100, 30)) as pilot:
        await settled(app, pilot)
        await pilot.press("ctrl+c")
        await ended(app, pilot)
    assert app.detached
    assert "shutdown" not in source.actions and "shutdown now" not in source.actions


async def test_ctrl_c_without_a_server_quits_like_q() -> None:
    source = live_demo("broker-down")
    source.attachment = None
    app = ConsoleApp(source)
    async with app.run_test(size=(100, 30)) as pilot:
        await settled(app, pilot)
        await pilot.press("ctrl+c")
        await until(pilot, lambda: "shutdown" in source.actions, "shutdown")
        await ended(app, pilot)
