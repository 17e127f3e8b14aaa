"""The supervisor server and attached TUIs as ``bench_server`` runs them, and what it asks them.

``sentry-console serve`` and ``sentry-console`` (the TUI) are started exactly as an operator
would, from a private state directory and a ``SENTRY_CONF`` file; the TUI on a pseudo-terminal
whose output is searched for the first frame that shows data. The broker cost of each process
comes from Redis ``MONITOR`` lines of the claimed database, attributed by client port.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import queue
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import psutil

from console.server.client import NoServer, ServerClient
from console.server.protocol import data_from_json
from console.snapshot import DashboardData
from tests.benchmarks.compare.benchapp import APP_PATH
from tests.benchmarks.compare.procs import BIN, HOST, PORT, Launcher
from tests.waiting import wait_until

DATA_FRAME = b"attached: server"
"""Drawn (status bar, log title) only once the screen shows a snapshot from the server."""
BROKER_UP = b"mconnected\x1b["
"""The status bar's broker state once the broker answers (a segment of its own; not
``disconnected``)."""
PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> None:
    """Adopt orphaned descendants (a server a TUI started outlives it), so cleanup finds them."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def reap() -> None:
    """Collect exited adopted children (no zombies left behind)."""
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass


def write_conf(path: Path, workers: int, refresh: float = 1.0) -> Path:
    """A ``SENTRY_CONF`` file: ``workers`` workers as ``console_proc`` runs them, no cron."""
    group = {"name": "worker", "processes": workers, "concurrency": 1, "hostname": "cw-{n}@%h"}
    path.write_text(
        f"CONSOLE_WORKERS = [{group!r}]\nCONSOLE_CRON = False\n"
        f"CONSOLE_REFRESH_INTERVAL = {refresh!r}\n"
    )
    return path


class Screen:
    """A terminal's output as it arrives: when each searched pattern first appeared."""

    def __init__(self, fd: int, patterns: dict[str, bytes]) -> None:
        self.patterns = patterns
        self.seen: dict[str, float] = {}
        self.tail = b""
        threading.Thread(target=self._read, args=(fd,), daemon=True).start()

    def _read(self, fd: int) -> None:
        carry = b""
        longest = max((len(p) for p in self.patterns.values()), default=1)
        with contextlib.suppress(OSError):
            while chunk := os.read(fd, 65536):
                now = time.monotonic()
                window = carry + chunk
                for name, pattern in self.patterns.items():
                    if name not in self.seen and pattern in window:
                        self.seen[name] = now
                carry = window[-longest:]
                self.tail = (self.tail + chunk)[-16384:]

    def text(self) -> str:
        """The last output, escape sequences removed (for error messages)."""
        plain = re.sub(rb"\x1b\[[0-9;?<>=]*[A-Za-z]", b"", self.tail)
        return plain.decode(errors="replace")[-600:]


class ServerLauncher(Launcher):
    """A :class:`Launcher` that can also start a process on a terminal that is watched."""

    def start_watched(
        self, argv: Sequence[str], env: dict[str, str], patterns: dict[str, bytes]
    ) -> tuple[subprocess.Popen[bytes], Screen, float]:
        """Start ``argv`` on a fresh 140x40 pseudo-terminal; the process, its screen, when."""
        began = time.monotonic()
        proc, master = self.spawn_on_pty(argv, env)
        return proc, Screen(master, patterns), began


def console_env(launcher: Launcher, url: str, state_dir: Path, conf: Path) -> dict[str, str]:
    """The environment of ``serve`` and the TUI: bench broker, private state dir, the conf."""
    env = launcher.env(url, SENTRY_CONSOLE_STATE_DIR=str(state_dir), SENTRY_CONF=str(conf))
    env.pop("SENTRY_CONSOLE_REFRESH", None)
    return env


def console_argv(*args: str) -> list[str]:
    """``sentry-console --app <bench app> ARGS`` (the installed entry point)."""
    return [str(BIN / "sentry-console"), "--app", APP_PATH, *args]


def server_data(state_dir: Path, timeout: float = 10.0) -> DashboardData:
    """The server's newest snapshot, from a short-lived client of its own."""
    client = ServerClient(state_dir)
    try:
        client.hello(read_only=True, client="bench")
        box: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
        client.on_data = box.put
        client.request("subscribe")
        raw = box.get(timeout=timeout)
        if not raw:
            raise ConnectionError("the server closed the connection")
        return data_from_json(raw)
    finally:
        client.close()


def server_pid(state_dir: Path) -> int:
    """The pid of the server for ``state_dir`` (NoServer when none answers)."""
    client = ServerClient(state_dir)
    try:
        return int(client.hello(read_only=True, client="bench")["pid"])
    finally:
        client.close()


def wait_online(state_dir: Path, workers: int, timeout: float) -> None:
    """Until the server's snapshot lists ``workers`` workers online."""

    def online() -> bool:
        try:
            data = server_data(state_dir)
        except (NoServer, OSError, TimeoutError, queue.Empty):
            return False
        return sum(1 for w in data.workers if w.online) >= workers

    wait_until(f"{workers} workers online under the server", online, timeout, step=0.5)


def stop_server(state_dir: Path, pid: int, grace: float = 30.0) -> None:
    """Stop every program now and the server; SIGKILL its group if it lingers."""
    with contextlib.suppress(Exception):
        client = ServerClient(state_dir)
        try:
            client.hello(client="bench")
            client.request("shutdown", timeout=grace, now=True)
        finally:
            client.close()
    with contextlib.suppress(psutil.Error):
        psutil.Process(pid).wait(grace)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)
    reap()


def cpu_of(pids: Iterable[int]) -> float:
    """User + system CPU seconds of these processes (not their children)."""
    total = 0.0
    for pid in pids:
        times = psutil.Process(pid).cpu_times()
        total += times.user + times.system
    return total


def thread_times(pids: Iterable[int]) -> dict[tuple[int, int], float]:
    """CPU seconds of every live thread of these processes, to the nanosecond (schedstat)."""
    times: dict[tuple[int, int], float] = {}
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError, ValueError, IndexError):
                ran = (task / "schedstat").read_text().split()[0]
                times[(pid, int(task.name))] = int(ran) / 1e9
    return times


class CpuMeter:
    """CPU seconds of some processes over a window: per thread to the nanosecond while no
    thread came or went, else (a thread's time leaves with it) from the 10 ms process ticks."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.began = time.monotonic()
        self._ticks = cpu_of(pids)
        self._threads = thread_times(pids)

    def percent(self) -> float:
        """% of one core used since the meter was made."""
        threads = thread_times(self.pids)
        ticks = cpu_of(self.pids)
        took = time.monotonic() - self.began
        if set(threads) == set(self._threads):
            used = sum(threads.values()) - sum(self._threads.values())
        else:
            used = ticks - self._ticks
        return 100 * used / took


def broker_ports(pid: int) -> set[int]:
    """Local ports of the process's TCP connections to the broker."""
    with contextlib.suppress(psutil.Error):
        return {
            c.laddr.port
            for c in psutil.Process(pid).net_connections(kind="tcp")
            if c.raddr and c.raddr.port == PORT
        }
    return set()


_LINE = re.compile(rb"^\+[0-9.]+ \[(\d+) [0-9.]+:(\d+)\] ")


class BrokerCount:
    """Commands the claimed db receives, by who sent them, while it runs (Redis ``MONITOR``)."""

    def __init__(self, db: int, who: dict[str, list[int]]) -> None:
        self.db = str(db).encode()
        self.who = who
        self.counts: dict[str, int] = {}
        self.connections: dict[str, int] = {}
        self._ports: dict[int, str] = {}
        self._stop = threading.Event()
        self._sock = socket.create_connection((HOST, PORT))
        self._sock.sendall(b"MONITOR\r\n")
        self._sock.settimeout(0.2)
        self.began = time.monotonic()
        self.ended = 0.0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _map_ports(self) -> None:
        for name, pids in self.who.items():
            ports: set[int] = set()
            for pid in pids:
                ports |= broker_ports(pid)
            self.connections[name] = max(self.connections.get(name, 0), len(ports))
            for port in ports:
                self._ports[port] = name

    def _run(self) -> None:
        buffer = b""
        mapped = 0.0
        while not self._stop.is_set():
            if time.monotonic() - mapped > 1.0:
                self._map_ports()
                mapped = time.monotonic()
            try:
                chunk = self._sock.recv(1 << 20)
            except TimeoutError:
                continue
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            *lines, buffer = buffer.split(b"\r\n")
            for line in lines:
                match = _LINE.match(line)
                if match and match.group(1) == self.db:
                    port = int(match.group(2))
                    name = self._ports.get(port, f"?{port}")
                    self.counts[name] = self.counts.get(name, 0) + 1

    def stop(self) -> dict[str, float]:
        """End counting; commands per second by name (unmapped ports summed as ``other``)."""
        self._map_ports()
        self._stop.set()
        self._thread.join(2)
        self.ended = time.monotonic()
        with contextlib.suppress(OSError):
            self._sock.close()
        took = max(self.ended - self.began, 1e-9)
        rates: dict[str, float] = {name: 0.0 for name in self.who}
        rates["other"] = 0.0
        for name, count in self.counts.items():
            key = self._late_name(name)
            rates[key] = rates.get(key, 0.0) + count / took
        return rates

    def _late_name(self, name: str) -> str:
        if not name.startswith("?"):
            return name
        return self._ports.get(int(name[1:]), "other")


def descendants(pid: int) -> list[int]:
    """Every descendant of ``pid`` (its programs and their pool children)."""
    with contextlib.suppress(psutil.Error):
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    return []
