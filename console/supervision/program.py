"""The state machine of one supervised program, stepped by the supervisor's ``tick``."""

from __future__ import annotations

import logging
import signal
import time
from collections import deque
from collections.abc import Callable

from console.supervision.model import (
    EXIT_HISTORY,
    ExitRecord,
    ProcessSnapshot,
    ProcessState,
    ProgramConfig,
    describe_running,
    format_exitstatus,
)
from console.supervision.output import OutputBuffer, OutputPump
from console.supervision.spawn import ChildProcess, Spawner

#: A process that exits from RUNNING within this many seconds of its start counts as a quick exit.
QUICK_EXIT_WINDOW = 10.0
#: The longest wait before restarting a program that keeps exiting quickly from RUNNING.
MAX_RESTART_DELAY = 30.0
TOO_QUICK = "Exited too quickly (process log may have details)"

log = logging.getLogger("sentry_console.supervision")


def restart_delay(quick_exits: int) -> float:
    """Seconds before restarting after ``quick_exits`` quick exits in a row: 0, 1, 2, 4 ... 30."""
    if quick_exits <= 0:
        return 0.0
    return min(2.0 ** (quick_exits - 1), MAX_RESTART_DELAY)


class ProgramRunner:
    """One program: its state, its current process, its output; not thread-safe on its own."""

    def __init__(
        self,
        config: ProgramConfig,
        *,
        spawner: Spawner,
        pump: OutputPump,
        buffer: OutputBuffer,
        seq: int,
        number: int | None = None,
        autostart: bool = True,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self._wall_clock = wall_clock
        self.seq = seq
        self.number = number
        self.buffer = buffer
        self._spawner = spawner
        self._pump = pump
        self._state = ProcessState.STOPPED
        self.process: ChildProcess | None = None
        self.pgid: int | None = None
        self.laststart: float | None = None
        self.started_wall: float | None = None
        self.spawns = 0
        self.restarts = 0  # automatic restarts, retries and `restart`; never a stop then start
        self.restart_counts = False  # the pending start is an operator's restart
        self.backoff = 0
        self.delay = 0.0  # next start attempt (BACKOFF) or SIGKILL time (STOPPING)
        self.restart_at: float | None = None  # pending automatic restart after an exit (EXITED)
        self.quick_exits = 0
        self.exitstatus: int | None = None
        self.exited_wall: float | None = None
        self.exits: deque[ExitRecord] = deque(maxlen=EXIT_HISTORY)
        self.message = ""
        self.killed = False
        self.want_start = autostart
        self.restart_after_stop = False
        self.removing = False
        self.cpu_percent: float | None = None
        self.rss_bytes: int | None = None

    @property
    def name(self) -> str:
        """The program's unique name."""
        return self.config.name

    @property
    def state(self) -> ProcessState:
        """The program's state; every change is logged."""
        return self._state

    @state.setter
    def state(self, new: ProcessState) -> None:
        if new is not self._state:
            process = self.process
            pid = process.pid if process is not None else None
            log.info("%s: %s -> %s%s", self.name, self._state, new, f" (pid {pid})" if pid else "")
            self._state = new

    @property
    def alive(self) -> bool:
        """Whether a process of this program may still be running."""
        return self.process is not None

    @property
    def settled(self) -> bool:
        """Whether no transition waits on a timer (a start, backoff, restart or stop due)."""
        if self.want_start or self.removing:
            return False
        if self.state is ProcessState.EXITED:
            return self.restart_at is None
        return self.state in (ProcessState.RUNNING, ProcessState.STOPPED, ProcessState.FATAL)

    # -- commands -------------------------------------------------------------------------

    def start(self) -> None:
        """Ask for a start at the next step; leaves FATAL, BACKOFF and EXITED."""
        if self.removing:
            return
        if self.state is ProcessState.STOPPING:
            self.restart_after_stop = True
        elif self.state not in (ProcessState.STARTING, ProcessState.RUNNING):
            self.want_start = True

    def stop(self, now: float) -> None:
        """Send the stop signal (STOPPING), or settle at once when nothing runs."""
        self.want_start = False
        self.restart_after_stop = False
        self.restart_counts = False
        self.restart_at = None
        if self.state in (ProcessState.STARTING, ProcessState.RUNNING) and self.process:
            self.state = ProcessState.STOPPING
            self.delay = now + self.config.stopwaitsecs
            self.killed = False
            self.process.send_signal(self.config.stopsignal, group=self.config.stopasgroup)
        elif self.state is ProcessState.BACKOFF:
            self.state = ProcessState.STOPPED

    def restart(self, now: float) -> None:
        """Stop if running, then start again once stopped."""
        if self.state in (ProcessState.STARTING, ProcessState.RUNNING, ProcessState.STOPPING):
            self.stop(now)
            self.restart_after_stop = self.restart_counts = not self.removing
        else:
            self.start()

    def kill(self) -> None:
        """SIGKILL the program's group (or the program alone without killasgroup)."""
        if self.process is not None:
            self.killed = True
            self.process.send_signal(signal.SIGKILL, group=self.config.killasgroup)

    # -- the state machine ----------------------------------------------------------------

    def step(self, now: float, *, may_spawn: bool) -> None:
        """Reap an exit, then make the one transition that is due."""
        if self.process is not None:
            status = self.process.poll()
            if status is not None:
                self._finish(status, now)
        state = self.state
        if may_spawn and not self.removing:
            if self.want_start and state not in (ProcessState.STARTING, ProcessState.RUNNING):
                if state is not ProcessState.STOPPING:
                    self.backoff = 0
                    self.quick_exits = 0
                    self._spawn(now, restart=self.restart_counts)
            elif state is ProcessState.EXITED and self.restart_at is not None:
                if now >= self.restart_at:
                    self._spawn(now, restart=True)
            elif state is ProcessState.BACKOFF and now >= self.delay:
                self._spawn(now, restart=True)
        state = self.state
        if state is ProcessState.STARTING and self.laststart is not None:
            if now - self.laststart >= self.config.startsecs:
                self.state = ProcessState.RUNNING
                self.backoff = 0
        elif state is ProcessState.STOPPING and not self.killed and now >= self.delay:
            self.message = f"stop timed out after {self.config.stopwaitsecs:g}s: SIGKILL sent"
            self.kill()

    def _spawn(self, now: float, *, restart: bool = False) -> None:
        self.want_start = self.restart_counts = False
        self.restart_at = None
        self.message = ""
        if restart:
            self.restarts += 1
        try:
            process = self._spawner.spawn(self.config)
        except OSError as exc:
            self.spawns += 1
            self.laststart = now
            self._failed_start(now, f"spawn error: {exc.strerror or exc}")
            return
        self.spawns += 1
        self.process = process
        self.pgid = process.pgid
        self.laststart = now
        self.started_wall = self._wall_clock()
        self.killed = False
        self.state = ProcessState.STARTING
        for fd in process.output_fds:
            self._pump.add(fd, self.buffer)

    def _failed_start(self, now: float, message: str) -> None:
        self.backoff += 1
        self.message = message
        log.warning("%s: could not start: %s", self.name, message)
        if self.backoff > self.config.startretries:
            self.state = ProcessState.FATAL
        else:
            self.state = ProcessState.BACKOFF
            self.delay = now + self.backoff

    def _finish(self, status: int, now: float) -> None:
        log.info("%s: exited: %s", self.name, format_exitstatus(status))
        self.process = None
        self.exited_wall = self._wall_clock()
        self.cpu_percent = self.rss_bytes = None
        ran = now - (self.laststart if self.laststart is not None else now)
        self._record_exit(status, ran)
        if self.state is ProcessState.STOPPING:
            self.exitstatus = status
            self.state = ProcessState.STOPPED
            if self.restart_after_stop:
                self.restart_after_stop = False
                self.want_start = True
        elif self.state is ProcessState.STARTING and ran < self.config.startsecs:
            self.exitstatus = status
            self._failed_start(now, TOO_QUICK)
        else:
            self.exitstatus = status
            self.state = ProcessState.EXITED
            self.quick_exits = self.quick_exits + 1 if ran < QUICK_EXIT_WINDOW else 0
            autorestart = self.config.autorestart
            expected = status in self.config.exitcodes
            self.message = "" if expected else f"Bad exit code ({format_exitstatus(status)})"
            if autorestart is True or (autorestart == "unexpected" and not expected):
                self.restart_at = now + restart_delay(self.quick_exits)

    def _record_exit(self, status: int, ran: float) -> None:
        """Keep the exit, and mark it in the output (pane and log file) between two runs."""
        stopping = self.state is ProcessState.STOPPING
        expected = (stopping and not self.killed) or status in self.config.exitcodes
        record = ExitRecord(self._wall_clock(), status, ran, expected)
        self.exits.append(record)
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.at))
        how = "stopped" if stopping and not self.killed else record.cause
        line = f"---- {when} {self.name}: {how} after {ran:.0f}s ({format_exitstatus(status)}) ----"
        self.buffer.write_log(f"{line}\n".encode())
        self.buffer.feed_lines([line])

    # -- views ----------------------------------------------------------------------------

    def snapshot(self, now: float) -> ProcessSnapshot:
        """An immutable view of this program at ``now``."""
        process = self.process
        pid = process.pid if process is not None else None
        live = process is not None and self.laststart is not None
        uptime = now - self.laststart if live and self.laststart is not None else None
        remaining: float | None = None
        if self.state is ProcessState.BACKOFF:
            remaining = max(self.delay - now, 0.0)
        elif self.state is ProcessState.EXITED and self.restart_at is not None:
            remaining = max(self.restart_at - now, 0.0)
        return ProcessSnapshot(
            name=self.name,
            group=self.config.group,
            state=self.state,
            pid=pid,
            pgid=self.pgid if live else None,
            started_at=self.started_wall if live else None,
            uptime=uptime,
            restarts=self.restarts,
            exitstatus=self.exitstatus,
            backoff_remaining=remaining,
            cpu_percent=self.cpu_percent if live else None,
            rss_bytes=self.rss_bytes if live else None,
            description=self._describe(pid, uptime, remaining),
            exited_at=self.exited_wall,
            exits=tuple(self.exits),
        )

    def _describe(self, pid: int | None, uptime: float | None, remaining: float | None) -> str:
        state = self.state
        pid_text = f"pid {pid}" if pid is not None else "pid unknown"
        if state is ProcessState.RUNNING:
            return describe_running(pid, uptime or 0.0)
        if state is ProcessState.STARTING:
            return f"{pid_text}, starting"
        if state is ProcessState.STOPPING:
            return f"{pid_text}, stopping" + (f" ({self.message})" if self.killed else "")
        if state is ProcessState.BACKOFF:
            return f"{self.message}, retrying in {remaining or 0.0:.1f}s"
        if state is ProcessState.FATAL:
            return self.message or TOO_QUICK
        if state is ProcessState.EXITED:
            text = self.message or format_exitstatus(self.exitstatus)
            if remaining is not None:
                return f"{text}, restarting in {remaining:.1f}s"
            return text
        if self.spawns == 0:
            return "Not started"
        return f"Stopped ({format_exitstatus(self.exitstatus)})"
