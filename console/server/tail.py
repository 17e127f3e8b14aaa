"""Following a program's output: which lines of a new tail are new."""

from __future__ import annotations

from collections.abc import Sequence


def appended(previous: Sequence[str], current: Sequence[str]) -> list[str] | None:
    """Lines of ``current`` that follow ``previous``'s tail, or None when they do not line up."""
    if not previous:
        return None if current else []
    tail = list(previous[-3:])
    for end in range(len(current), len(tail) - 1, -1):
        if list(current[end - len(tail) : end]) == tail:
            return list(current[end:])
    return None
