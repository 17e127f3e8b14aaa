"""Which process the log pane follows, and reading its output without ever breaking a refresh."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from textual.message import Message


def followed(selected: str | None, before: Sequence[str], now: Sequence[str]) -> str | None:
    """The process to show output of: the selected one, or its neighbour when it has gone.

    Like the table's cursor, which stays on the same row number when its row disappears, the
    neighbour is the process now at the removed one's position (or the last one).
    """
    if not now:
        return None
    if selected in now:
        return selected
    index = before.index(selected) if selected in before else 0
    return now[min(index, len(now) - 1)]


def safe_output(read: Callable[[str, int | None], list[str]], name: str, last: int) -> list[str]:
    """A program's output, or nothing when it cannot be read (the program was just removed)."""
    try:
        return read(name, last)
    except Exception as exc:
        if getattr(exc, "ends_session", False):
            raise
        return []


@dataclass
class PollFailed(Message):
    """One poll failed; the refresh goes on, and the operator sees the error once."""

    error: str
