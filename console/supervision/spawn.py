"""Process construction: the injectable ``Spawner`` and the real one, which runs a guard."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Protocol

from console.supervision.model import ProgramConfig

GUARD_SCRIPT = Path(__file__).with_name("guard.py")


class ChildProcess(Protocol):
    """One spawned program as the supervisor sees it."""

    @property
    def pid(self) -> int | None:
        """The program's own pid (not a guard's), or None while it is not known yet."""

    @property
    def pgid(self) -> int:
        """The process group that holds the program and all its descendants."""

    @property
    def output_fds(self) -> tuple[int, ...]:
        """Read ends of the output pipes; the supervisor drains and closes them."""

    def poll(self) -> int | None:
        """The exit status once the program has exited (negative: killed by that signal)."""

    def send_signal(self, signum: int, *, group: bool) -> None:
        """Send ``signum`` to the whole process group or to the program alone."""


class Spawner(Protocol):
    """Constructs processes; injectable so tests can replay histories with fakes."""

    def spawn(self, config: ProgramConfig) -> ChildProcess:
        """Start the program described by ``config``; raise OSError when that fails."""

    def close(self) -> None:
        """Release what the spawner holds once the supervisor has shut down."""


class GuardedProcess:
    """A program running under a guard process that is its session and group leader."""

    def __init__(self, popen: subprocess.Popen[bytes], status_fd: int, output_fds: tuple[int, ...]):
        self._popen = popen
        self._status_fd: int | None = status_fd
        self._status_buf = b""
        self._pid: int | None = None
        self._output_fds = output_fds

    @property
    def pid(self) -> int | None:
        """The program's own pid, read from the guard's status pipe when it arrives."""
        if self._pid is None and self._status_fd is not None:
            self._read_status()
        return self._pid

    @property
    def pgid(self) -> int:
        """The process group id (the guard's pid)."""
        return self._popen.pid

    @property
    def output_fds(self) -> tuple[int, ...]:
        """Read ends of the output pipes."""
        return self._output_fds

    def _read_status(self) -> None:
        assert self._status_fd is not None
        try:
            chunk = os.read(self._status_fd, 64)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        self._status_buf += chunk
        if b"\n" in self._status_buf:
            self._pid = int(self._status_buf.split(b"\n", 1)[0])
        if not chunk or self._pid is not None:
            os.close(self._status_fd)
            self._status_fd = None

    def poll(self) -> int | None:
        """The guard's exit status, which mirrors the program's.

        Once the guard has exited, whatever is left of its group is SIGKILLed before the guard is
        reaped: a guard that exits normally has emptied its group already, so only a guard that
        died unexpectedly (SIGKILLed) leaves anything to kill.
        """
        if self._popen.returncode is None and _exited(self._popen.pid):
            # Still unreaped, the guard's pid (the group id) cannot be reused by another process.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._popen.pid, signal.SIGKILL)
        status = self._popen.poll()
        if status is not None and self._status_fd is not None:
            self._read_status()
            if self._status_fd is not None:
                os.close(self._status_fd)
                self._status_fd = None
        return status

    def send_signal(self, signum: int, *, group: bool) -> None:
        """Signal the group (guard included, which survives stop signals) or the program."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if group or self.pid is None:
                os.killpg(self._popen.pid, signum)
            else:
                os.kill(self.pid, signum)


def _exited(pid: int) -> bool:
    """Whether the child ``pid`` has exited, without reaping it."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


class PopenSpawner:
    """The real spawner: each program runs as ``guard.py ... -- command`` in a new session."""

    def __init__(self) -> None:
        # Nothing is ever written to the lifeline: its read end reaches end of file in every guard
        # once this process is gone, however it died.
        self._lifeline_read, self._lifeline_write = os.pipe()

    def spawn(self, config: ProgramConfig) -> GuardedProcess:
        """Start ``config.command`` under a guard; output goes to fresh non-blocking pipes."""
        if self._lifeline_write < 0:
            raise OSError("the spawner is closed")
        status_read, status_write = os.pipe()
        out_read, out_write = os.pipe()
        err_read, err_write = (-1, -1) if config.redirect_stderr else os.pipe()
        env = dict(os.environ)
        env.update(config.env)
        argv = [
            sys.executable,
            "-I",
            "-S",
            str(GUARD_SCRIPT),
            "--lifeline",
            str(self._lifeline_read),
            "--status",
            str(status_write),
            "--parent",
            str(os.getpid()),
            "--",
            *config.command,
        ]
        try:
            popen = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out_write,
                stderr=out_write if config.redirect_stderr else err_write,
                env=env,
                cwd=config.cwd,
                start_new_session=True,
                pass_fds=(self._lifeline_read, status_write),
                restore_signals=True,
            )
        except BaseException:
            for fd in (status_read, out_read, err_read):
                if fd >= 0:
                    os.close(fd)
            raise
        finally:
            for fd in (status_write, out_write, err_write):
                if fd >= 0:
                    os.close(fd)
        outputs = (out_read,) if err_read < 0 else (out_read, err_read)
        for fd in (status_read, *outputs):
            os.set_blocking(fd, False)
        return GuardedProcess(popen, status_read, outputs)

    def close(self) -> None:
        """Close the lifeline: any guard still running kills its group."""
        for fd in (self._lifeline_read, self._lifeline_write):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._lifeline_read = self._lifeline_write = -1
