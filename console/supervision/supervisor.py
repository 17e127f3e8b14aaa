"""The supervisor: many programs, their state machines, and the threads that serve them."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from console.supervision.groups import GroupOperations, RollingRestartError, real_seconds
from console.supervision.model import ProcessSnapshot, ProgramConfig
from console.supervision.output import OutputBuffer, OutputPump, RotatingLogFile
from console.supervision.program import ProgramRunner
from console.supervision.resources import GroupResourceSampler
from console.supervision.spawn import PopenSpawner, Spawner

#: How often the background sampler refreshes CPU% and RSS.
SAMPLE_INTERVAL = 2.0

__all__ = ["SAMPLE_INTERVAL", "RollingRestartError", "Supervisor", "real_seconds"]


class Supervisor(GroupOperations):
    """Runs programs with supervisor's semantics; thread-safe, UI-free and broker-free.

    State changes happen in ``tick``. With ``run_in_background`` a loop thread calls it (and is the
    only thread that spawns); otherwise the caller does, and ``wait_for`` ticks while it waits.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        spawner: Spawner | None = None,
        tick_interval: float = 0.1,
        idle_interval: float = 1.0,
        sample_interval: float = SAMPLE_INTERVAL,
    ) -> None:
        self._clock = clock
        self._wall_clock = wall_clock  # when things happened, as shown to people
        self._spawner: Spawner = spawner if spawner is not None else PopenSpawner()
        self._tick_interval = tick_interval
        self._idle_interval = max(idle_interval, tick_interval)
        self._sample_interval = sample_interval
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._programs: dict[str, ProgramRunner] = {}
        # Written under the lock, read without it: output() must not wait for a spawn.
        self._buffers: dict[str, OutputBuffer] = {}
        self._seq = 0
        self._wake = threading.Event()
        self._pump = OutputPump(on_eof=self._wake.set)  # reap an exit now, not at the next tick
        self._sampler = GroupResourceSampler()
        self._halt = threading.Event()
        self._threads: list[threading.Thread] = []
        self._loop_thread: threading.Thread | None = None
        self._closing = False
        self._shutdown_done = threading.Event()

    # -- programs ---------------------------------------------------------------------------

    def add_program(
        self, config: ProgramConfig, *, autostart: bool = True, number: int | None = None
    ) -> None:
        """Add a program (STOPPED); it starts at the next tick when ``autostart``."""
        with self._lock:
            if self._closing:
                raise RuntimeError("the supervisor is shutting down")
            if config.name in self._programs:
                raise ValueError(f"a program named {config.name!r} already exists")
            logfile = None
            if config.logfile is not None:
                logfile = RotatingLogFile(
                    config.logfile, config.logfile_maxbytes, config.logfile_backups
                )
            self._seq += 1
            buffer = OutputBuffer(config.log_lines, logfile, clock=self._wall_clock)
            self._buffers[config.name] = buffer
            self._programs[config.name] = ProgramRunner(
                config,
                spawner=self._spawner,
                pump=self._pump,
                buffer=buffer,
                seq=self._seq,
                number=number,
                autostart=autostart,
                wall_clock=self._wall_clock,
            )
        self._wake.set()

    def remove_program(self, name: str) -> None:
        """Stop the program if needed and forget it once it is no longer running (non-blocking)."""
        with self._lock:
            runner = self._runner(name)
            runner.removing = True
            runner.stop(self._clock())
            self._collect_removed()
        self._wake.set()

    def start(self, name: str) -> None:
        """Start a program (from STOPPED, EXITED, BACKOFF or FATAL) at the next tick."""
        with self._lock:
            if not self._closing:
                self._runner(name).start()
        self._wake.set()

    def stop(self, name: str) -> None:
        """Stop a program without waiting: STOPPING now, STOPPED once its process has exited."""
        with self._lock:
            self._runner(name).stop(self._clock())
            self._changed.notify_all()
        self._wake.set()

    def restart(self, name: str) -> None:
        """Stop a program if it runs, then start it again (non-blocking)."""
        with self._lock:
            if not self._closing:
                self._runner(name).restart(self._clock())
        self._wake.set()

    def _runner(self, name: str) -> ProgramRunner:
        try:
            return self._programs[name]
        except KeyError:
            raise KeyError(f"no program named {name!r}") from None

    def _collect_removed(self) -> None:
        for name in [n for n, r in self._programs.items() if r.removing and not r.alive]:
            self._buffers.pop(name, None)
            self._programs.pop(name).buffer.close()

    # -- stepping ---------------------------------------------------------------------------

    def tick(self) -> bool:
        """Advance every program's state machine by one step; True when all are settled."""
        loop = self._loop_thread
        if loop is not None and loop.is_alive() and threading.current_thread() is not loop:
            raise RuntimeError("tick() is driven by the background loop")
        return self._tick()

    def _tick(self) -> bool:
        """Step every program; True when all of them are settled."""
        with self._lock:
            now = self._clock()
            for runner in list(self._programs.values()):
                runner.step(now, may_spawn=not self._closing)
            self._collect_removed()
            self._changed.notify_all()
            return all(runner.settled for runner in self._programs.values())

    def run_in_background(self) -> None:
        """Start the loop thread (ticks, and so all spawning), the output pump and the sampler."""
        with self._lock:
            if self._loop_thread is not None or self._closing:
                return
            self._loop_thread = threading.Thread(target=self._loop, name="supervisor", daemon=True)
            sampler = threading.Thread(target=self._sample_loop, name="resources", daemon=True)
            self._threads = [self._loop_thread, sampler]
        self._pump.start()
        for thread in self._threads:
            thread.start()

    def _loop(self) -> None:
        while not self._halt.is_set():
            settled = self._tick()
            # With nothing due on a timer, exits (end of output) and commands wake the loop;
            # the slower tick only catches an exit whose pipe a leftover child keeps open.
            self._wake.wait(self._idle_interval if settled else self._tick_interval)
            self._wake.clear()

    def _sample_loop(self) -> None:
        while not self._halt.wait(self._sample_interval):
            self.sample_resources()

    def sample_resources(self) -> None:
        """Refresh CPU% and RSS of every running program's process group."""
        with self._lock:
            groups = {r.pgid: r for r in self._programs.values() if r.alive and r.pgid}
        usage = self._sampler.sample(groups)
        with self._lock:
            for pgid, runner in groups.items():
                if runner.alive and runner.pgid == pgid and pgid in usage:
                    runner.cpu_percent = usage[pgid].cpu_percent
                    runner.rss_bytes = usage[pgid].rss_bytes

    # -- views ------------------------------------------------------------------------------

    def snapshot(self) -> list[ProcessSnapshot]:
        """Every program's current snapshot, in the order they were added."""
        with self._lock:
            now = self._clock()
            return [runner.snapshot(now) for runner in self._programs.values()]

    def config(self, name: str) -> ProgramConfig:
        """The configuration program ``name`` runs with."""
        with self._lock:
            return self._runner(name).config

    def output(self, name: str, last: int | None = None, stamps: bool = False) -> list[str]:
        """The program's buffered output lines (stdout and stderr merged), or the last ``last``.

        Never waits for the supervisor's lock (a spawn may hold it), so a UI can call it.
        """
        buffer = self._buffers.get(name)
        if buffer is None:
            raise KeyError(f"no program named {name!r}")
        return buffer.lines(last, stamps)

    def output_since(
        self, name: str, cursor: tuple[int, int] | None = None
    ) -> tuple[tuple[int, int], list[str]]:
        """Lines written after ``cursor`` (all kept lines for None, or after a restart that
        replaced the process and so its output), and the cursor to pass next time."""
        buffer = self._buffers.get(name)
        if buffer is None:
            raise KeyError(f"no program named {name!r}")
        mark = cursor[1] if cursor is not None and cursor[0] == id(buffer) else 0
        written, lines = buffer.since(mark)
        return (id(buffer), written), lines

    def output_mark(self, name: str) -> int:
        """How many lines the program has written so far (changes whenever its output does)."""
        buffer = self._buffers.get(name)
        if buffer is None:
            raise KeyError(f"no program named {name!r}")
        return buffer.written

    def wait_for(self, predicate: Callable[[list[ProcessSnapshot]], bool], timeout: float) -> bool:
        """Wait until ``predicate(snapshot())`` holds; False after ``timeout`` seconds."""
        deadline = real_seconds() + timeout
        with self._changed:
            while True:
                if predicate(self.snapshot()):
                    return True
                remaining = deadline - real_seconds()
                if remaining <= 0:
                    return False
                loop = self._loop_thread
                if loop is None or not loop.is_alive():
                    self._tick()  # nobody else drives the machines
                    if predicate(self.snapshot()):
                        return True
                self._changed.wait(min(remaining, self._tick_interval))

    # -- shutdown ---------------------------------------------------------------------------

    def shutdown(self, timeout: float | None = None) -> None:
        """Warm-stop every program in parallel, SIGKILL groups still alive after their
        ``stopwaitsecs`` (or after ``timeout``), then stop the threads. Idempotent."""
        with self._lock:
            first = not self._closing
            self._closing = True
            if first:
                now = self._clock()
                for runner in self._programs.values():
                    runner.stop(now)
                waits = [r.config.stopwaitsecs for r in self._programs.values() if r.alive]
        if not first:
            if timeout is not None:  # a hard stop asked during a warm one: escalate now
                with self._lock:
                    for runner in self._programs.values():
                        if runner.alive:
                            runner.kill()
                self._wake.set()
            self._shutdown_done.wait(timeout if timeout is None else timeout + 10.0)
            return
        try:
            self._wake.set()
            limit = timeout if timeout is not None else max(waits, default=0.0) + 5.0
            if not self.wait_for(lambda _: not self._any_alive(), limit):
                with self._lock:
                    for runner in self._programs.values():
                        runner.kill()
                self.wait_for(lambda _: not self._any_alive(), 5.0)
            self._halt.set()
            self._wake.set()
            for thread in self._threads:
                if thread is not threading.current_thread():
                    thread.join(5.0)
            self._pump.stop(5.0)
            self._spawner.close()
            with self._lock:
                for runner in self._programs.values():
                    runner.buffer.close()
        finally:
            self._shutdown_done.set()

    def _any_alive(self) -> bool:
        with self._lock:
            return any(runner.alive for runner in self._programs.values())
