"""Broker capacity on screen: the memory figure of the status bar and the warnings line."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from console.broker.capacity import BrokerCapacity, BrokerMemory
from console.ui import format as fmt

LIMIT_WORDS = {"maxmemory": "max", "host": "host", "watermark": "watermark"}
#: Warnings shown at once; the rest are counted.
SHOWN_WARNINGS = 2


def memory_rank(memory: BrokerMemory) -> int:
    """How hard the status bar keeps the memory figure when space runs out."""
    if (memory.fraction or 0) >= 0.75 or memory.seconds_to_full is not None:
        return 8
    return 3


def memory_text(memory: BrokerMemory) -> Text:
    """``mem 41.2M/64.0M max 64% full in 5m`` coloured by how close memory is to its limit."""
    text = Text.assemble(("mem ", "dim"), fmt.size(memory.used))
    fraction = memory.fraction
    if memory.limit:
        word = LIMIT_WORDS.get(memory.limit_source or "", "")
        style = (
            "bold red" if (fraction or 0) >= 0.9 else "yellow" if (fraction or 0) >= 0.75 else ""
        )
        text.append(f"/{fmt.size(memory.limit)} {word} ")
        text.append(f"{fraction:.0%}", style)
    if memory.seconds_to_full is not None:
        text.append(f" full in {fmt.duration(memory.seconds_to_full)}", "bold yellow")
    return text


def warnings_text(capacity: BrokerCapacity | None) -> Text | None:
    """The warnings line(s), alarms first; None when there is nothing to say."""
    if capacity is None:
        return None
    lines: list[Text] = []
    for warning in capacity.warnings[:SHOWN_WARNINGS]:
        style = "bold white on red" if warning.level == "alarm" else "bold black on yellow"
        label = " ALARM " if warning.level == "alarm" else " WARNING "
        lines.append(Text.assemble((label, style), " ", warning.message))
    extra = len(capacity.warnings) - SHOWN_WARNINGS
    if extra > 0:
        lines.append(Text(f"+{extra} more: sentry-console status lists them all", "dim"))
    for line in lines:
        line.no_wrap = True
        line.overflow = "ellipsis"
    return Text("\n").join(lines) if lines else None


class CapacityWarnings(Static):
    """One line per broker warning under the status bar; takes no room when all is well."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self._last: Text | None = None
        self._said: set[str] = set()
        self.display = False

    def show(self, capacity: BrokerCapacity | None) -> None:
        """Show this poll's warnings (hidden when there are none); say each new note once."""
        for note in capacity.notes if capacity is not None else ():
            if note not in self._said:
                self._said.add(note)
                self.notify(note, severity="warning", timeout=8)
        text = warnings_text(capacity)
        if text == self._last:
            return
        self._last = text
        self.display = text is not None
        self.update(text or "")
