"""Where a configuration's private files and sockets live, who may have made them, and which
process owns them (the console lock).

A socket is only as private as the directory it is in. Every directory the console puts a socket
in is checked before use: a real directory (not a link), owned by this user, mode 0700. When a
state directory's path is too long for a unix socket (108 bytes), the socket goes to a short
per-user directory under /tmp, whose name anyone can predict: so the console never uses one that
someone else made, and says so in one line.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import socket
import stat
import struct
import time
from pathlib import Path
from types import TracebackType

SUN_PATH_MAX = 107
"""Longest unix socket path (sun_path is 108 bytes including the terminating NUL)."""
LOCK_NAME = "console.lock"
_POLL_INTERVAL = 0.02


class StateDirError(Exception):
    """A private directory that cannot be used safely (one clear line for the operator)."""


class ConsoleAlreadyRunning(StateDirError):
    """Another console process holds the console lock of this state directory."""

    def __init__(self, pid: int) -> None:
        holder = f"pid {pid}" if pid > 0 else "unknown pid"
        super().__init__(f"another sentry-console is already running here ({holder})")
        self.pid = pid


def default_state_dir() -> Path:
    """$XDG_STATE_HOME/sentry-console, or ~/.local/state/sentry-console."""
    base = os.environ.get("XDG_STATE_HOME", "")
    root = Path(base) if os.path.isabs(base) else Path.home() / ".local" / "state"
    return root / "sentry-console"


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (parents as needed) and make sure it is a 0700 directory this user owns."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700)
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode):
        raise StateDirError(f"{path} is not a directory")
    if info.st_uid != os.getuid():
        raise StateDirError(
            f"{path} belongs to uid {info.st_uid}, not to you (uid {os.getuid()}): "
            "someone else made it; remove it, or set XDG_RUNTIME_DIR or a shorter state directory"
        )
    if stat.S_IMODE(info.st_mode) != 0o700:
        os.chmod(path, 0o700)
    return path


def check_trusted_dir(path: Path) -> None:
    """Refuse a socket's directory that is not this user's or root's (a client's check)."""
    try:
        info = os.lstat(path)
    except OSError:
        return  # nothing there: the connect fails with "no server"
    if not stat.S_ISDIR(info.st_mode):
        raise StateDirError(f"{path} is not a directory: refusing to use a socket in it")
    if info.st_uid not in (os.getuid(), 0):
        raise StateDirError(
            f"{path} belongs to uid {info.st_uid}, not to you (uid {os.getuid()}) or root: "
            "refusing to talk to a server in it"
        )


def _digest(state_dir: Path) -> str:
    return hashlib.sha256(os.fsencode(os.path.abspath(state_dir))).hexdigest()[:16]


def shared_short_dir() -> Path:
    """The per-user directory under /tmp for sockets whose own path would be too long."""
    return Path("/tmp") / f"sentry-console-{os.getuid()}"


def short_socket(state_dir: Path, name: str) -> Path:
    """A socket named after ``state_dir`` in the per-user /tmp directory."""
    return shared_short_dir() / f"{_digest(state_dir)}-{name}"


def _fits(path: Path) -> bool:
    return len(os.fsencode(path)) <= SUN_PATH_MAX


def fitting_socket(directory: Path, state_dir: Path, name: str) -> Path:
    """``directory/name`` when it is short enough for a unix socket, else the per-user /tmp
    socket named after ``state_dir`` (the one fallback every socket of the console uses)."""
    candidate = directory / name
    return candidate if _fits(candidate) else short_socket(Path(os.path.abspath(state_dir)), name)


def runtime_dir() -> Path | None:
    """``$XDG_RUNTIME_DIR/sentry-console`` when the session has a runtime directory."""
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if not xdg or not os.path.isabs(xdg):
        return None
    return Path(xdg) / "sentry-console"


def socket_candidates(state_dir: Path, name: str) -> list[Path]:
    """Where a socket for ``state_dir`` may be, most preferred first: the session's runtime
    directory, the state directory, the per-user /tmp directory (only those short enough)."""
    state = Path(os.path.abspath(state_dir))
    found: list[Path] = []
    xdg = runtime_dir()
    if xdg is not None:
        found.append(xdg / f"{_digest(state)}-{name}")
    found.append(state / name)
    found.append(short_socket(state, name))
    return [p for p in found if _fits(p)]


def record_path(state_dir: Path, name: str) -> Path:
    """The file in the state directory that says where its server's socket is (for a client of
    another session, whose runtime directory differs or is unset)."""
    return Path(os.path.abspath(state_dir)) / f"{name}.where"


def recorded_socket(state_dir: Path, name: str) -> Path | None:
    """The socket path a server recorded in ``state_dir`` (None when there is none)."""
    try:
        text = record_path(state_dir, name).read_text().strip()
    except OSError:
        return None
    return Path(text) if text and os.path.isabs(text) else None


def socket_path(state_dir: Path, name: str) -> Path:
    """Where a server for ``state_dir`` listens (the first candidate)."""
    candidates = socket_candidates(state_dir, name)
    if not candidates:  # pragma: no cover - /tmp is short
        raise StateDirError("no short enough path for a unix socket")
    return candidates[0]


def prepare_socket_dir(path: Path, state_dir: Path) -> None:
    """Make (or check) the private directory a server's socket goes in."""
    state = Path(os.path.abspath(state_dir))
    ensure_private_dir(state)
    if path.parent != state:
        ensure_private_dir(path.parent)


def peer_uid(sock: socket.socket) -> int:
    """The uid of the process at the other end of a unix socket, from the kernel."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", raw)
    return int(uid)


def _read_pid(fd: int) -> int:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return 0
    return int(text) if text.isdigit() else 0


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


class ConsoleLock:
    """An flock on <state_dir>/console.lock that holds the pid of the running console."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = Path(state_dir)
        self.path = self.state_dir / LOCK_NAME
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """True while this object holds the lock."""
        return self._fd is not None

    def acquire(self, wait: float = 0.5) -> None:
        """Take the lock or raise ConsoleAlreadyRunning naming the other console's pid."""
        if self._fd is not None:
            return
        ensure_private_dir(self.state_dir)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                pid = _read_pid(fd)
                # A brief shared lock from held_by_other() or a holder that has not yet
                # written its pid: retry until the deadline before giving up.
                if (pid > 0 and _pid_alive(pid)) or time.monotonic() >= deadline:
                    os.close(fd)
                    raise ConsoleAlreadyRunning(pid) from None
                time.sleep(_POLL_INTERVAL)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Give the lock up (the file stays, empty)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    def __enter__(self) -> ConsoleLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    @staticmethod
    def held_by_other(state_dir: Path) -> int | None:
        """The pid of another process holding the console lock (0 if unknown), else None."""
        try:
            fd = os.open(Path(state_dir) / LOCK_NAME, os.O_RDONLY | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                pid = _read_pid(fd)
                return None if pid == os.getpid() else pid
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)
