"""SVG snapshots of every screen the screenshots command exports, fed the frozen demo data."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import pytest
from textual.app import App
from textual.pilot import Pilot

from console.ui.app import ConsoleApp
from console.ui.demo import DemoSource
from console.ui.demo.screenshots import SHOTS, settle


class SnapCompare(Protocol):
    """The ``snap_compare`` fixture's function, as these tests call it."""

    def __call__(
        self,
        app: App[Any],
        *,
        terminal_size: tuple[int, int],
        run_before: Callable[[Pilot[Any]], Awaitable[None]],
    ) -> bool: ...


@pytest.mark.parametrize("shot", sorted(SHOTS))
def test_screen_100x30(snap_compare: SnapCompare, shot: str) -> None:
    scenario, keys = SHOTS[shot]

    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot, keys)

    app = ConsoleApp(DemoSource(scenario), live=False)
    assert snap_compare(app, terminal_size=(100, 30), run_before=run_before)


def test_main_screen_80x24(snap_compare: SnapCompare) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)

    app = ConsoleApp(DemoSource("main"), live=False)
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_attached_status_bar_150x30(snap_compare: SnapCompare) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)

    app = ConsoleApp(DemoSource("main"), live=False)
    assert snap_compare(app, terminal_size=(150, 30), run_before=run_before)
