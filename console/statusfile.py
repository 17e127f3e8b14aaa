"""The status file: the process table a running console leaves in its state directory.

``sentry-console status`` reads it without talking to the server; the runtime rewrites it when
the table changes, and at least every :data:`STATUS_EVERY` seconds.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from console.failures import FAILURE_WINDOW, failures_since
from console.snapshot import DashboardData, process_json

STATUS_FILE = "console-status.json"
STATUS_EVERY = 5.0
"""Seconds between rewrites of the status file while nothing in the process table changes."""


class StatusFileWriter:
    """Writes ``console-status.json`` atomically, and only when there is something new."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / STATUS_FILE
        self._key: tuple[object, ...] = ()
        self._at = 0.0

    def write(self, data: DashboardData, log_file: Path) -> None:
        """Leave the process table where ``sentry-console status`` can read it."""
        latest = data.failures[0].uuid if data.failures else ""
        key = (
            *((p.name, p.state, p.pid, p.restarts, p.role) for p in data.processes),
            str(data.errors),
            latest,
        )
        if key == self._key and data.taken_at - self._at < STATUS_EVERY:
            return
        self._key, self._at = key, data.taken_at
        processes = [process_json(p) for p in data.processes]
        payload = {"pid": os.getpid(), "taken_at": data.taken_at, "processes": processes}
        payload |= {"errors": data.errors, "log_file": str(log_file)}
        payload["failures_5m"] = failures_since(data.failures, data.taken_at - FAILURE_WINDOW)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(payload))
        tmp.replace(self.path)

    def remove(self) -> None:
        """The console stopped: no table to read any more."""
        self.path.unlink(missing_ok=True)


def read_status(state_dir: Path) -> dict[str, Any] | None:
    """The process table a running console left in ``state_dir``, if any."""
    try:
        return dict(json.loads((state_dir / STATUS_FILE).read_text()))
    except (OSError, ValueError):
        return None
