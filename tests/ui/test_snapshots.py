"""SVG snapshots of the console's screens, fed the frozen demo data."""

from __future__ import annotations

import pytest

from console.ui.app import ConsoleApp
from console.ui.demo import DemoSource


@pytest.mark.parametrize("scenario", ["main", "broker-down"])
def test_main_screen_100x30(snap_compare, scenario: str) -> None:
    app = ConsoleApp(DemoSource(scenario), live=False)
    assert snap_compare(app, terminal_size=(100, 30))


def test_fatal_program_selected(snap_compare) -> None:
    app = ConsoleApp(DemoSource("fatal"), live=False)
    assert snap_compare(app, terminal_size=(100, 30), press=["end"])
