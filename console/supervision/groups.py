"""Groups of programs: scaling, and restarts one at a time or start-first (a replacement
beside the running process, which stops only once the replacement is ready).

Mixed into :class:`console.supervision.supervisor.Supervisor`, whose state these work on.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Callable

from console.supervision.model import ProcessSnapshot, ProcessState, ProgramConfig
from console.supervision.output import OutputBuffer
from console.supervision.program import ProgramRunner

#: How often a rolling restart asks ``ready`` again while the replacement is not ready yet.
READY_POLL_INTERVAL = 0.25


class RollingRestartError(RuntimeError):
    """A rolling restart stopped because a replacement failed or did not become ready in time."""


#: The clock of waits on threads (a condition, an event), which last real seconds: program
#: states follow the injected clock, but a fake one that moves only when told to would make a
#: deadline never come.
real_seconds = time.monotonic


class GroupOperations:
    """Scale and restart a group of programs; needs the supervisor's state and methods below."""

    _lock: threading.RLock
    _changed: threading.Condition
    _programs: dict[str, ProgramRunner]
    _buffers: dict[str, OutputBuffer]
    _wake: threading.Event
    _halt: threading.Event
    _closing: bool
    _clock: Callable[[], float]
    _runner: Callable[[str], ProgramRunner]
    add_program: Callable[..., None]
    remove_program: Callable[[str], None]
    restart: Callable[[str], None]
    snapshot: Callable[[], list[ProcessSnapshot]]
    wait_for: Callable[[Callable[[list[ProcessSnapshot]], bool], float], bool]

    def group_members(self, group: str) -> list[str]:
        """Names of the group's programs, oldest first: not those being removed, nor a
        start-first replacement (``<name>~new``) that is only starting."""
        with self._lock:
            members = [r for r in self._programs.values() if r.config.group == group]
            return [
                r.name
                for r in sorted(members, key=lambda r: r.seq)
                if not r.removing and not r.name.endswith("~new")
            ]

    def scale(self, group: str, count: int, make_config: Callable[[int], ProgramConfig]) -> None:
        """Grow the group to ``count`` with ``make_config(n)``, or stop and remove the newest."""
        if count < 0:
            raise ValueError("a group cannot have fewer than 0 processes")
        with self._lock:
            members = [self._programs[name] for name in self.group_members(group)]
            for runner in sorted(members, key=lambda r: r.seq, reverse=True)[
                : max(0, len(members) - count)
            ]:
                self.remove_program(runner.name)
            taken = {r.number for r in self._programs.values() if r.config.group == group}
            number = 0
            for _ in range(count - len(members)):
                number += 1
                while number in taken:
                    number += 1
                config = make_config(number)
                if config.group is None:
                    config = dataclasses.replace(config, group=group)
                elif config.group != group:
                    raise ValueError(
                        f"make_config({number}) made a program of group {config.group!r}"
                    )
                self.add_program(config, number=number)
                taken.add(number)

    def rolling_restart(
        self, group: str, ready: Callable[[ProcessSnapshot], bool], *, timeout: float = 120.0
    ) -> None:
        """Restart the group one program at a time (blocking; call it off the UI thread).

        The next program is restarted only once the previous one's replacement is RUNNING and
        ``ready`` (called outside the supervisor's lock) says yes. ``timeout`` bounds each step.
        """
        with self._lock:
            names = [
                name
                for name in self.group_members(group)
                if self._programs[name].state is not ProcessState.STOPPED
            ]
        for name in names:
            with self._lock:
                runner = self._programs.get(name)
                if runner is None or runner.removing:
                    continue
                spawns_before = runner.spawns
                self.restart(name)
            self._await_replacement(name, spawns_before, ready, timeout)

    def replace_running(
        self,
        name: str,
        config: ProgramConfig,
        ready: Callable[[ProcessSnapshot], bool],
        *,
        timeout: float = 120.0,
    ) -> None:
        """Start ``config`` beside the running program ``name``, then warm-stop the old process.

        Blocking (call it off the UI thread). The replacement runs as ``<name>~new`` until it
        is RUNNING and ``ready`` says yes; then it takes the name (and the restart count) and
        the old process, listed as ``<name>~old``, gets its warm stop and is forgotten once it
        exits. The old process works until its replacement is ready, so a group of one never
        lacks a consumer. On failure the replacement is removed and the old process keeps on.
        """
        temp = f"{name}~new"
        with self._lock:
            old = self._runner(name)
            if old.state is not ProcessState.RUNNING or old.removing or self._closing:
                raise RollingRestartError(f"{name} is not running")
            config = dataclasses.replace(config, name=temp, group=old.config.group)
            self.add_program(config, number=old.number)
        try:
            self._await_replacement(temp, 0, ready, timeout)
        except RollingRestartError:
            with contextlib.suppress(KeyError):
                self.remove_program(temp)
            raise
        with self._lock:
            new = self._programs.get(temp)
            if new is None or old.removing or self._programs.get(name) is not old:
                raise RollingRestartError(f"{name} changed during its replacement")
            new.config = dataclasses.replace(new.config, name=name)
            new.spawns += old.spawns
            new.restarts = old.restarts + 1  # a replacement is a restart of the slot
            old.config = dataclasses.replace(old.config, name=f"{name}~old")
            swapped = {old: new, new: old}
            runners = [swapped.get(r, r) for r in self._programs.values()]
            self._programs = {r.name: r for r in runners}
            self._buffers = {r.name: r.buffer for r in runners}  # output follows the name too
            old.removing = True
            old.stop(self._clock())
            self._changed.notify_all()
        self._wake.set()

    def _await_replacement(
        self,
        name: str,
        spawns_before: int,
        ready: Callable[[ProcessSnapshot], bool],
        timeout: float,
    ) -> None:
        deadline = real_seconds() + timeout

        def replaced(snapshots: list[ProcessSnapshot]) -> bool:
            runner = self._programs.get(name)
            if runner is None or self._closing:
                return True
            if runner.state is ProcessState.FATAL and runner.spawns > spawns_before:
                return True
            return runner.spawns > spawns_before and runner.state is ProcessState.RUNNING

        while True:
            remaining = deadline - real_seconds()
            if remaining <= 0 or not self.wait_for(replaced, remaining):
                raise RollingRestartError(f"{name} did not come back RUNNING within {timeout:g}s")
            snap = next((s for s in self.snapshot() if s.name == name), None)
            if snap is None or self._closing:
                raise RollingRestartError(f"{name} went away during the rolling restart")
            if snap.state is ProcessState.FATAL:
                raise RollingRestartError(f"{name} failed to start again: {snap.description}")
            if ready(snap):
                return
            if real_seconds() >= deadline:
                raise RollingRestartError(f"{name} was not ready within {timeout:g}s")
            self._halt.wait(min(READY_POLL_INTERVAL, max(deadline - real_seconds(), 0.0)))
