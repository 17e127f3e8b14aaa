"""Polling helpers shared by the chaos tests: deadlines, process liveness, event store rows."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[2]


def gone(pid: int) -> bool:
    """True when ``pid`` no longer runs (a zombie awaiting its reaper counts as gone)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_gone(pids: list[int], timeout: float) -> list[int]:
    """Poll until every pid is gone; return those still alive at the deadline."""
    deadline = time.monotonic() + timeout
    while (alive := [p for p in pids if not gone(p)]) and time.monotonic() < deadline:
        time.sleep(0.02)
    return alive


def descendants(pid: int) -> list[int]:
    """Live descendants of ``pid`` (empty once it is gone)."""
    try:
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def store_count(path: Path) -> int:
    """Rows in the event store's ``events`` table (0 while it does not exist yet)."""
    if not path.exists():
        return 0
    with contextlib.closing(sqlite3.connect(path, timeout=30)) as db:
        try:
            return int(db.execute("select count(*) from events").fetchone()[0])
        except sqlite3.OperationalError:
            return 0


def kill_groups(pgids: list[int]) -> None:
    """SIGKILL every process group in ``pgids`` that still exists."""
    for pgid in pgids:
        with contextlib.suppress(OSError):
            os.killpg(pgid, signal.SIGKILL)


class DriverProcess:
    """The headless console driver running in its own session, reading its JSON lines."""

    def __init__(self, broker: str, state_dir: Path, env: dict[str, str], *args: str) -> None:
        command = [sys.executable, "-m", "tests.chaos_support.driver"]
        command += ["--broker", broker, "--state-dir", str(state_dir), *args]
        self.proc = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            text=True,
            env=dict(os.environ, **env, PYTHONUNBUFFERED="1"),
            cwd=ROOT,
            start_new_session=True,  # a signal for it never reaches pytest
        )
        self.groups: list[int] = []
        self.seen: set[int] = set()

    def read(self) -> dict[str, Any]:
        """The next JSON line the driver prints (the driver enforces its own deadlines)."""
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, f"the console driver exited ({self.proc.poll()}) without a line"
        data: dict[str, Any] = json.loads(line)
        return data

    def wait_ready(self) -> dict[str, list[int]]:
        """Wait until every program is RUNNING; remember their process groups."""
        data = self.read()
        assert "ready" in data, data
        ready: dict[str, list[int]] = data["ready"]
        self.groups = [pgid for _, pgid in ready.values()]
        return ready

    def note_descendants(self) -> list[int]:
        """Record (and return) every current descendant, to check later that all are gone."""
        found = descendants(self.proc.pid)
        self.seen.update(found)
        return found

    def cleanup(self) -> None:
        """Kill the driver and every group it started, whatever the test did."""
        with contextlib.suppress(OSError):
            self.proc.kill()
        kill_groups(self.groups)
        for pid in self.seen:
            with contextlib.suppress(psutil.Error):
                psutil.Process(pid).kill()
        self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@contextlib.contextmanager
def supervised_workers(
    broker_url: str,
    state_dir: Path,
    unique: str,
    group: Any,
    monkeypatch: Any,
    **env: str,
) -> Iterator[Any]:
    """A started ConsoleRuntime supervising ``group`` (no cron) for the Sentry workers app.

    The queues carry the test's ``unique`` suffix and the event store lives in ``state_dir``;
    ``env`` adds more variables. At the end the runtime shuts down and any process group it
    left is killed.
    """
    from console.runtime import ConsoleRuntime
    from console.settings import Settings
    from console.supervision import Supervisor
    from workers.app import make_app

    monkeypatch.setenv("SENTRY_QUEUE_SUFFIX", f"-{unique}")
    monkeypatch.setenv("SENTRY_EVENT_STORE", str(state_dir / "events.sqlite3"))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SENTRY_BROKER_URL", broker_url)
    settings = Settings(
        broker=None, broker_source="test", state_dir=state_dir, worker_groups=(group,), cron=False
    ).with_broker(broker_url, "test")
    app = make_app(os.environ)  # a fresh app: the module-level one may carry another suffix
    runtime = ConsoleRuntime(settings, app, Supervisor(tick_interval=0.05))
    runtime.start()
    try:
        yield runtime
    finally:
        groups = [s.pgid for s in runtime.supervisor.snapshot() if s.pgid]
        runtime.shutdown()
        kill_groups(groups)
