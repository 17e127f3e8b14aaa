"""Small text formatters for the console's tables (pure functions, easy to test)."""

from __future__ import annotations

SPARK = " ▁▂▃▄▅▆▇█"


def duration(seconds: float | None) -> str:
    """Compact duration, as precise as it is useful: 42s, 17m, 2h07m, 3d04h.

    Seconds show only in the first minute (a fresh restart), so a quiet screen stops
    changing every second and costs nothing to redraw.
    """
    if seconds is None:
        return "-"
    s = int(max(seconds, 0))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def size(n: int | None) -> str:
    """Bytes as 512K / 61.2M / 1.3G."""
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "K", "M", "G"):
        if value < 1024 or unit == "G":
            return f"{value:.0f}{unit}" if unit in ("B", "K") else f"{value:.1f}{unit}"
        value /= 1024
    return f"{value:.1f}G"


def rate(per_second: float | None) -> str:
    """Messages per second, short; a trickle below one a second reads "<1" so it doesn't flicker."""
    if per_second is None:
        return "-"
    if per_second >= 1000:
        return f"{per_second / 1000:.1f}k"
    if per_second >= 10:
        return f"{per_second:.0f}"
    if per_second >= 1:
        return f"{per_second:.1f}"
    return "<1" if per_second > 0.05 else "0"


def millis(value: float) -> str:
    """A round trip in milliseconds: "<1ms" below one, whole milliseconds above."""
    return "<1ms" if value < 1 else f"{value:.0f}ms"


def sparkline(values: tuple[int, ...] | list[int], width: int = 12) -> str:
    """The last ``width`` values as block characters scaled to their own maximum."""
    tail = list(values)[-width:]
    if not tail:
        return ""
    top = max(tail)
    if top <= 0:
        return SPARK[1] * len(tail)
    return "".join(SPARK[1 + round(v / top * (len(SPARK) - 2))] for v in tail)


def percent(value: float | None) -> str:
    """CPU percent."""
    return "-" if value is None else f"{value:.0f}%"
