"""``sentry-console screenshots``: the console's screens exported as SVG, in demo mode."""

from __future__ import annotations

import io
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from console.ui.app import ConsoleApp
from console.ui.demo.source import DemoSource

SHOTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "main": ("main", ()),
    "help": ("main", ("question_mark",)),
    "task-detail": ("main", ("tab", "tab", "down", "down", "enter")),
    "logs": ("main", ("l",)),
    "fatal": ("fatal", ("down", "down", "down")),
    "broker-down": ("broker-down", ()),
    "memory-warning": ("memory-warning", ()),
    "watch": ("watch", ("down", "down", "down", "space")),
}
"""Screenshot name -> (demo scenario, keys pressed before the shot)."""


async def settle(pilot: Pilot[Any], keys: tuple[str, ...] = ()) -> None:
    """Let the first poll land, press ``keys``, and wait until the screen is still."""
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    if keys:
        await pilot.press(*keys)
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.wait_for_scheduled_animations()


def _shooter(
    keys: tuple[str, ...], target: Path
) -> Callable[[Pilot[object]], Coroutine[Any, Any, None]]:
    async def shoot(pilot: Pilot[object]) -> None:
        await settle(pilot, keys)
        pilot.app.save_screenshot(filename=target.name, path=str(target.parent))
        pilot.app.exit()

    return shoot


WIDE = (150, 30)
"""The size of the ``attached`` shot, wide enough for the whole status bar."""


def export_screenshots(out_dir: Path, size: tuple[int, int] = (100, 30)) -> list[Path]:
    """Write one SVG per screen to ``out_dir`` and return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    shots = [(name, scenario, keys, size) for name, (scenario, keys) in SHOTS.items()]
    shots.append(("attached", "main", (), WIDE))
    for filename, scenario, keys, shot_size in shots:
        app = ConsoleApp(DemoSource(scenario), live=False)
        target = out_dir / f"{filename}.svg"
        app.run(headless=True, size=shot_size, auto_pilot=_shooter(keys, target))
        written.append(target)
    written.append(export_detached(out_dir / "detached.svg", size[0]))
    return written


def export_detached(target: Path, width: int) -> Path:
    """What the terminal shows after ``d``: the line the console prints as it detaches."""
    from rich.console import Console

    from console.ui.launch import detach_message

    terminal = Console(record=True, width=width, force_terminal=True, file=io.StringIO())
    terminal.print("$ sentry-console", style="bold")
    terminal.print(detach_message(4242), highlight=False)
    terminal.print("$ sentry-console ctl status", style="bold")
    for line in ("worker-1", "worker-2", "cron"):
        terminal.print(f"{line:<20} RUNNING   pid {41027 + len(line)}    uptime 02:15:07")
    target.write_text(terminal.export_svg(title="sentry-console: detached"))
    return target
