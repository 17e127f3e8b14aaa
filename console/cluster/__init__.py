"""Celery side of the console: event receiver, bounded cluster state, remote control."""

from console.cluster.control import RemoteControl, RemoteControlError
from console.cluster.models import ClusterSnapshot, TaskInfo, WorkerInfo
from console.cluster.monitor import ClusterMonitor
from console.cluster.state import ClusterState

__all__ = [
    "ClusterMonitor",
    "ClusterSnapshot",
    "ClusterState",
    "RemoteControl",
    "RemoteControlError",
    "TaskInfo",
    "WorkerInfo",
]
