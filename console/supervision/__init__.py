"""UI-free, broker-free process supervisor with supervisor's semantics.

Names are loaded lazily so that ``python -m console.supervision.guard`` imports nothing heavy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from console.supervision.groups import RollingRestartError
    from console.supervision.model import ProcessSnapshot, ProcessState, ProgramConfig
    from console.supervision.signals import install_shutdown_signals
    from console.supervision.spawn import ChildProcess, PopenSpawner, Spawner
    from console.supervision.supervisor import Supervisor

_EXPORTS = {
    "ChildProcess": "spawn",
    "PopenSpawner": "spawn",
    "ProcessSnapshot": "model",
    "ProcessState": "model",
    "ProgramConfig": "model",
    "RollingRestartError": "groups",
    "Spawner": "spawn",
    "Supervisor": "supervisor",
    "install_shutdown_signals": "signals",
}
__all__ = [
    "ChildProcess",
    "PopenSpawner",
    "ProcessSnapshot",
    "ProcessState",
    "ProgramConfig",
    "RollingRestartError",
    "Spawner",
    "Supervisor",
    "install_shutdown_signals",
]


def __getattr__(name: str) -> Any:
    """Import an exported name on first use."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
