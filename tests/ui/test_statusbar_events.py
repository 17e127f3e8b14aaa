"""In the workers-only event mode the status bar says task events are off instead of a count."""

from __future__ import annotations

from dataclasses import replace

from console.ui.demo import demo_data
from console.ui.statusbar import fit_status, status_parts


def test_the_status_bar_says_task_events_are_off() -> None:
    data = demo_data("main")
    shown = fit_status(status_parts(data, "demo"), 200).plain
    assert f"tasks {len(data.active_tasks)}" in shown and "task events off" not in shown
    lean = replace(data, events="workers", active_tasks=())
    shown = fit_status(status_parts(lean, "demo"), 200).plain
    assert "task events off" in shown and "tasks 0" not in shown
