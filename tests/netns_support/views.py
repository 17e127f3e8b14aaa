"""What each console and the operator see: snapshots kept in arrival order, waited on by predicate.

``ConsoleView`` subscribes to one host's supervisor server over its unix socket (the socket is
in the host's state directory, reachable from the test's namespace); ``WatchView`` reads the
JSON lines of ``sentry-console watch --json`` running on the operator host.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from console.server.client import ServerClient

Snapshot = dict[str, Any]
#: Snapshots kept per view: minutes of history at two to four per second.
HISTORY = 2000


class Snapshots:
    """Snapshots (dicts with a ``taken_at``) as they arrive; ``wait_for`` scans and waits."""

    def __init__(self, label: str) -> None:
        self.label = label
        self._seen: deque[Snapshot] = deque(maxlen=HISTORY)
        self._cond = threading.Condition()
        self._count = 0
        self.ended: str | None = None

    def add(self, snap: Snapshot) -> None:
        """Keep one snapshot (called by the reader thread)."""
        with self._cond:
            self._seen.append(snap)
            self._count += 1
            self._cond.notify_all()

    def end(self, why: str) -> None:
        """No more snapshots will come."""
        with self._cond:
            self.ended = why
            self._cond.notify_all()

    def latest(self) -> Snapshot | None:
        """The newest snapshot, if any."""
        with self._cond:
            return self._seen[-1] if self._seen else None

    def wait_for(
        self,
        predicate: Callable[[Snapshot], bool],
        timeout: float,
        what: str,
        *,
        since: float = 0.0,
    ) -> Snapshot:
        """The first snapshot taken at or after ``since`` (epoch s) for which ``predicate`` holds.

        Snapshots already received count too, so a state that came and went while the caller
        was busy is still found. AssertionError after ``timeout`` seconds, naming ``what`` and
        showing the last snapshot.
        """
        deadline = time.monotonic() + timeout
        checked = 0  # how many of the snapshots received so far were looked at
        with self._cond:
            while True:
                fresh = list(self._seen)[max(0, len(self._seen) - (self._count - checked)) :]
                checked = self._count
                for snap in fresh:
                    if float(snap.get("taken_at") or 0) >= since and predicate(snap):
                        return snap
                left = deadline - time.monotonic()
                if left <= 0 or self.ended is not None:
                    last = json.dumps(self._seen[-1] if self._seen else None)[:3000]
                    ended = f" (ended: {self.ended})" if self.ended else ""
                    raise AssertionError(
                        f"{self.label}: no {what} within {timeout}s{ended}; last: {last}"
                    )
                self._cond.wait(min(left, 0.5))


class ConsoleView(Snapshots):
    """One host's console, as its supervisor server pushes it (one snapshot per refresh)."""

    def __init__(self, label: str, state_dir: Path) -> None:
        super().__init__(label)
        self.client = ServerClient(state_dir)
        self.client.on_data = self._take
        self.client.hello(read_only=True, client="netns-test")
        self.client.request("subscribe")

    def _take(self, raw: dict[str, Any]) -> None:
        if raw:
            self.add(raw)
        else:
            self.end(self.client.closed_reason or "the server closed the connection")

    def close(self) -> None:
        """Leave the server (it and its programs go on)."""
        with contextlib.suppress(OSError):
            self.client.close()


def broker_state(snap: Snapshot) -> str:
    """A console snapshot's broker state (connected, connecting, down)."""
    return str(snap["broker"]["state"])


def cron_role(snap: Snapshot) -> str | None:
    """The role of a console's cron process (leader, standby, no broker), None without one."""
    for process in snap.get("processes", []):
        if process.get("group") == "cron" and process.get("pid"):
            role = process.get("role")
            return None if role is None else str(role)
    return None


class WatchView(Snapshots):
    """``sentry-console watch --json`` on the operator host: one JSON object per line."""

    def __init__(self, label: str, proc: subprocess.Popen[str]) -> None:
        super().__init__(label)
        self.proc = proc
        self._reader = threading.Thread(target=self._read, name=f"{label}-read", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                snap = json.loads(line)
            except ValueError:
                continue
            if isinstance(snap, dict):
                self.add(snap)
        self.end(f"watch exited with {self.proc.wait()}")

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, then wait; the exit code (None when it had to be killed)."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
        try:
            code: int | None = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            code = None
        self._reader.join(5)
        return code


def host_workers(snap: Snapshot, host: str) -> list[dict[str, Any]]:
    """The workers a watch snapshot lists on ``host`` (by the host part of the node name)."""
    return [w for w in snap.get("workers", []) if str(w["hostname"]).endswith(f"@{host}")]


def online_by_host(snap: Snapshot) -> dict[str, int]:
    """How many workers a watch snapshot shows online, per host."""
    counts: dict[str, int] = {}
    for worker in snap.get("workers", []):
        host = str(worker["hostname"]).rpartition("@")[2]
        counts[host] = counts.get(host, 0) + int(bool(worker.get("online")))
    return counts
