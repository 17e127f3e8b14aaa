"""Samples (median, min, max) and the one table the runner prints."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field


@dataclass
class Stat:
    """Several measurements of one figure."""

    values: list[float] = field(default_factory=list)

    def add(self, value: float) -> None:
        """Record one measurement."""
        self.values.append(value)

    @property
    def median(self) -> float:
        """The median, NaN without measurements."""
        return statistics.median(self.values) if self.values else math.nan

    def show(self, fmt: str) -> str:
        """``median [min-max]`` with ``fmt`` (a format spec such as ``.1f``)."""
        if not self.values:
            return "n/a"
        med = format(self.median, fmt)
        if len(self.values) == 1:
            return med
        return f"{med} [{format(min(self.values), fmt)}-{format(max(self.values), fmt)}]"


@dataclass
class Row:
    """One line of the table: our figure beside its baseline, and the goal."""

    figure: str
    ours: Stat
    baseline_name: str
    baseline: Stat | None
    fmt: str
    goal: str = ""
    met: bool | None = None

    @property
    def ratio(self) -> str:
        """Ours / baseline of the medians."""
        if self.baseline is None or not self.baseline.values or not self.ours.values:
            return ""
        if self.baseline.median == 0:
            return "inf" if self.ours.median else "1.00x"
        return f"{self.ours.median / self.baseline.median:.2f}x"


def render(rows: list[Row], title: str) -> str:
    """The table as text."""
    head = ("figure", "sentry-console", "baseline", "baseline figure", "ratio", "goal", "")
    cells = [head]
    for row in rows:
        mark = "" if row.met is None else ("ok" if row.met else "MISS")
        base = row.baseline.show(row.fmt) if row.baseline is not None else ""
        cells.append(
            (row.figure, row.ours.show(row.fmt), row.baseline_name, base, row.ratio, row.goal, mark)
        )
    widths = [max(len(c[i]) for c in cells) for i in range(len(head))]
    lines = [title, ""]
    for n, cell in enumerate(cells):
        lines.append("  ".join(c.ljust(w) for c, w in zip(cell, widths, strict=True)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)
