"""Shutdown signals: SIGTERM, SIGINT and SIGHUP (an SSH session dropping) call one callback."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType

SHUTDOWN_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def install_shutdown_signals(callback: Callable[[int], None]) -> None:
    """Route SIGTERM, SIGINT and SIGHUP to ``callback(signum)``; main thread only."""
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("shutdown signals can only be installed from the main thread")

    def handle(signum: int, frame: FrameType | None) -> None:
        callback(signum)

    for signum in SHUTDOWN_SIGNALS:
        signal.signal(signum, handle)
