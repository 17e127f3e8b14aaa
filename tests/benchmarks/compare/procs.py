"""Processes the runner starts: each in its own session, all killed (whole group) at the end."""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import struct
import subprocess
import sys
import termios
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
HOST, PORT = "127.0.0.1", 6379
TERM_SIZE = (40, 140)  # rows, cols


class Launcher:
    """Starts child processes in new sessions and kills every one of them (and their groups)."""

    def __init__(self) -> None:
        self._procs: list[subprocess.Popen[Any]] = []
        self._fds: list[int] = []

    def env(self, broker_url: str, **extra: str) -> dict[str, str]:
        """The environment of every tool: the bench broker, the repository on the path."""
        env = dict(os.environ)
        env.update(
            SENTRY_BROKER_URL=broker_url,
            PYTHONPATH=str(ROOT),
            PYTHONUNBUFFERED="1",
            TERM="xterm-256color",
            COLUMNS=str(TERM_SIZE[1]),
            LINES=str(TERM_SIZE[0]),
        )
        env.update(extra)
        return env

    def start(
        self, argv: Sequence[str], env: dict[str, str], *, log: Path | None = None
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` in a new session, output to ``log`` (or discarded)."""
        out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115
        try:
            proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=ROOT,
                start_new_session=True,
            )
        finally:
            if log:
                out.close()  # type: ignore[union-attr]
        self._procs.append(proc)
        return proc

    def start_piped(self, argv: Sequence[str], env: dict[str, str]) -> subprocess.Popen[str]:
        """Start ``argv`` in a new session with text pipes on its stdin and stdout."""
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            cwd=ROOT,
            start_new_session=True,
            text=True,
        )
        self._procs.append(proc)
        return proc

    def start_in_pty(
        self, argv: Sequence[str], env: dict[str, str], *, log: Path | None = None
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` on a fresh pseudo-terminal (140x40) whose output is always drained."""
        proc, master = self.spawn_on_pty(argv, env)
        threading.Thread(target=_drain, args=(master, log), daemon=True).start()
        return proc

    def spawn_on_pty(
        self, argv: Sequence[str], env: dict[str, str]
    ) -> tuple[subprocess.Popen[bytes], int]:
        """Start ``argv`` in its own session on a fresh 140x40 pseudo-terminal; the process and
        the terminal's master side, which the caller must keep reading."""
        master, slave = os.openpty()
        rows, cols = TERM_SIZE
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        try:
            proc = subprocess.Popen(
                list(argv),
                stdin=slave,
                stdout=slave,
                stderr=slave,
                env=env,
                cwd=ROOT,
                start_new_session=True,
            )
        finally:
            os.close(slave)
        self._procs.append(proc)
        self._fds.append(master)
        return proc, master

    def stop(self, proc: subprocess.Popen[Any], grace: float = 0.0) -> None:
        """SIGTERM the process (when ``grace``), wait up to ``grace`` s, then SIGKILL its group."""
        if grace and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(grace)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)

    def close(self) -> None:
        """Kill every process group started here, then any descendant left over."""
        for proc in self._procs:
            self.stop(proc)
        kill_descendants()
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._procs.clear()
        self._fds.clear()


def _drain(fd: int, log: Path | None) -> None:
    """Read a terminal's output until it closes; keep the last 64 KiB in ``log`` if given."""
    tail = b""
    with contextlib.suppress(OSError):
        while chunk := os.read(fd, 65536):
            if log is not None:
                tail = (tail + chunk)[-65536:]
    if log is not None:
        log.write_bytes(tail)


def kill_descendants() -> None:
    """SIGKILL every descendant of this process, group first when it leads its own."""
    me = os.getpgid(0)
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error, ProcessLookupError, PermissionError):
            pgid = os.getpgid(child.pid)
            if pgid != me:
                os.killpg(pgid, signal.SIGKILL)
            child.kill()


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process (its children not included)."""
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def rss_mb(pid: int) -> float:
    """Resident set size of one process in MiB."""
    return float(psutil.Process(pid).memory_info().rss) / 2**20
