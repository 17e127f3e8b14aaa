"""Plain data of the supervisor: process states, program configuration and snapshots."""

from __future__ import annotations

import enum
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Literal


class ProcessState(enum.StrEnum):
    """The states of a supervised program, as supervisor names them."""

    STOPPED = "STOPPED"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    BACKOFF = "BACKOFF"
    STOPPING = "STOPPING"
    EXITED = "EXITED"
    FATAL = "FATAL"


def _empty_env() -> Mapping[str, str]:
    return MappingProxyType({})


@dataclass(frozen=True)
class ProgramConfig:
    """One program to supervise, with supervisor's option names and defaults."""

    name: str
    command: Sequence[str]
    group: str | None = None
    env: Mapping[str, str] = field(default_factory=_empty_env)
    cwd: str | None = None
    startsecs: float = 1.0
    startretries: int = 3
    autorestart: bool | Literal["unexpected"] = True
    exitcodes: tuple[int, ...] = (0,)
    stopsignal: signal.Signals = signal.SIGTERM
    stopwaitsecs: float = 30.0
    stopasgroup: bool = True
    killasgroup: bool = True
    redirect_stderr: bool = True
    log_lines: int = 10_000
    logfile: Path | None = None
    logfile_maxbytes: int = 10 * 1024 * 1024
    logfile_backups: int = 5

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a program needs a name")
        if not self.command:
            raise ValueError(f"program {self.name!r} has an empty command")
        if self.autorestart not in (True, False, "unexpected"):
            raise ValueError(
                f"program {self.name!r}: autorestart must be true, false or unexpected"
            )
        if self.startsecs < 0 or self.stopwaitsecs < 0 or self.startretries < 0:
            raise ValueError(f"program {self.name!r}: negative startsecs/stopwaitsecs/startretries")
        if self.log_lines < 1:
            raise ValueError(f"program {self.name!r}: log_lines must be at least 1")


#: Exits kept per program (shown in the process detail).
EXIT_HISTORY = 20


@dataclass(frozen=True)
class ExitRecord:
    """One exit of a program's process: when, how, after how long, and whether it was expected."""

    at: float
    """Wall-clock time of the exit."""
    status: int
    """Exit code, or minus the number of the signal that ended it."""
    ran: float
    """Seconds the process had run."""
    expected: bool
    """True for a stop the console asked for or an exit code listed in ``exitcodes``."""

    @property
    def cause(self) -> str:
        """``exited 1`` or ``killed by SIGKILL``."""
        if self.status >= 0:
            return f"exited {self.status}"
        try:
            return f"killed by {signal.Signals(-self.status).name}"
        except ValueError:
            return f"killed by signal {-self.status}"


@dataclass(frozen=True)
class ProcessSnapshot:
    """What a program looks like at one moment; immutable and safe to hand to any thread."""

    name: str
    group: str | None
    state: ProcessState
    pid: int | None
    pgid: int | None
    started_at: float | None
    uptime: float | None
    restarts: int
    exitstatus: int | None
    backoff_remaining: float | None
    cpu_percent: float | None
    rss_bytes: int | None
    description: str
    role: str | None = None
    """A cron's coordination role (leader, standby, no broker), when it reports one."""
    last_slot: float | None = None
    """A cron's last slot sent (the due time, Unix seconds), when it has sent one."""
    exited_at: float | None = None
    """Wall-clock time of the last exit (``exitstatus`` says how), None before any exit."""
    exits: tuple[ExitRecord, ...] = ()
    """The last :data:`EXIT_HISTORY` exits, oldest first."""


def format_uptime(seconds: float) -> str:
    """Format a duration as supervisorctl does: ``H:MM:SS``, with days when needed."""
    total = int(max(seconds, 0.0))
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{days} day{'s' if days != 1 else ''}, {clock}" if days else clock


def describe_running(pid: int | None, uptime: float) -> str:
    """What a running program's description says: its pid and uptime."""
    pid_text = f"pid {pid}" if pid is not None else "pid unknown"
    return f"{pid_text}, uptime {format_uptime(uptime)}"


def format_exitstatus(status: int | None) -> str:
    """Describe an exit status: ``exit status 1`` or ``terminated by SIGKILL``."""
    if status is None:
        return "exit status unknown"
    if status < 0:
        try:
            return f"terminated by {signal.Signals(-status).name}"
        except ValueError:
            return f"terminated by signal {-status}"
    return f"exit status {status}"
