"""Demo mode: the console's screens on frozen, deterministic data, with no broker, server or
process behind them.

``sentry-console screenshots`` exports its SVGs from it (:mod:`console.ui.demo.screenshots`),
and the UI tests drive the screens through it. Nothing else in the console uses it.
"""

from console.ui.demo.data import (
    DEMO_LOG,
    NOW,
    SCENARIOS,
    URL,
    WATCH_HOSTS,
    demo_capacity,
    demo_data,
    watch_data,
)
from console.ui.demo.source import DemoSource

__all__ = [
    "DEMO_LOG",
    "NOW",
    "SCENARIOS",
    "URL",
    "WATCH_HOSTS",
    "DemoSource",
    "demo_capacity",
    "demo_data",
    "watch_data",
]
