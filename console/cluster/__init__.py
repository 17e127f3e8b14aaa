"""Celery side of the console: event receiver, bounded cluster state, remote control.

Names are loaded lazily: the plain data in :mod:`console.cluster.models` (what a client of the
server shows) must not load celery with the receiver and remote control.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from console.cluster.control import RemoteControl, RemoteControlError
    from console.cluster.models import ClusterSnapshot, TaskInfo, WorkerInfo
    from console.cluster.monitor import ClusterMonitor
    from console.cluster.state import ClusterState

_EXPORTS = {
    "ClusterMonitor": "monitor",
    "ClusterSnapshot": "models",
    "ClusterState": "state",
    "RemoteControl": "control",
    "RemoteControlError": "control",
    "TaskInfo": "models",
    "WorkerInfo": "models",
}
__all__ = [
    "ClusterMonitor",
    "ClusterSnapshot",
    "ClusterState",
    "RemoteControl",
    "RemoteControlError",
    "TaskInfo",
    "WorkerInfo",
]


def __getattr__(name: str) -> Any:
    """Import an exported name on first use."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
