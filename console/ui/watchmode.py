"""What watch mode leaves out: every key that needs a local supervisor.

In watch mode nothing is supervised, so restarting, starting and stopping, scaling, the cron,
program output and detaching have nothing to act on. Their keys are absent (not shown in the
footer, the help or the palette, and pressing them does nothing) rather than refused one by one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from textual.binding import Binding

from console.ui.commands import PaletteCommand

SUPERVISOR_ACTIONS = frozenset(
    {"restart", "toggle_selected", "toggle_cron", "scale", "rolling_restart", "detach"}
    | {"logs", "timestamps", "process_detail"}
)
"""Actions (app namespace, no arguments) that act on supervised programs or their output."""
SUPERVISOR_SECTIONS = frozenset({"processes", "log pane", "process detail", "logs", "quit dialog"})
"""Help sections about things watch mode does not show."""
QUIT_TOOLTIP = "Quit (the workers are not touched)"


def action_name(action: str) -> str:
    """``app.scale(1)`` -> ``scale``."""
    return action.removeprefix("app.").removeprefix("screen.").partition("(")[0]


def needs_supervisor(action: str) -> bool:
    """True for an action watch mode leaves out."""
    return action_name(action) in SUPERVISOR_ACTIONS


def watch_sections(
    sections: Sequence[tuple[str, Sequence[Binding]]],
) -> list[tuple[str, Sequence[Binding]]]:
    """The help's sections without what needs a supervisor; ``q`` says it touches nothing."""
    kept: list[tuple[str, Sequence[Binding]]] = []
    for where, bindings in sections:
        if where in SUPERVISOR_SECTIONS:
            continue
        keys = [
            replace(b, tooltip=QUIT_TOOLTIP) if b.id == "quit" else b
            for b in bindings
            if not needs_supervisor(b.action)
        ]
        kept.append((where, keys))
    return kept


def watch_commands(commands: Sequence[PaletteCommand]) -> list[PaletteCommand]:
    """Palette entries without what needs a supervisor."""
    return [c for c in commands if not needs_supervisor(c.action)]
