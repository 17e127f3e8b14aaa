"""Survived failures show in the status bar."""

from __future__ import annotations

from dataclasses import replace

from console.ui.demo import demo_data
from console.ui.statusbar import fit_status, status_parts


def test_the_status_bar_counts_survived_failures() -> None:
    data = demo_data("main")
    assert "errors" not in fit_status(status_parts(data, "demo"), 200).plain
    data = replace(data, errors={"cluster poll": 2, "undecodable event": 5})
    assert "errors 7" in fit_status(status_parts(data, "demo"), 200).plain
    assert "errors 7" in fit_status(status_parts(data, "demo"), 80).plain  # kept when narrow
