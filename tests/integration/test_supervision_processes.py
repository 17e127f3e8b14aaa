"""The supervisor with real processes: backoff timing, output draining, stop escalation, scaling."""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import sys
import time
from collections.abc import Iterator
from functools import partial

import psutil
import pytest

from console.supervision.model import ProcessState, ProgramConfig
from console.supervision.supervisor import Supervisor
from tests.waiting import wait_until


def gone(pid: int) -> bool:
    """True when ``pid`` no longer runs (a zombie awaiting its reaper counts as gone)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def child_lines(sup: Supervisor, name: str) -> list[str]:
    """What the program wrote: its output without the supervisor's exit marks."""
    return [line for line in sup.output(name) if not line.startswith("---- ")]


@pytest.fixture
def supervisor() -> Iterator[Supervisor]:
    """A real supervisor running in the background; everything it started dies at the end."""
    sup = Supervisor(tick_interval=0.02)
    sup.run_in_background()
    groups: set[int] = set()
    try:
        yield sup
    finally:
        groups.update(s.pgid for s in sup.snapshot() if s.pgid)
        sup.shutdown(timeout=5)
        for pgid in groups:
            with contextlib.suppress(OSError):
                os.killpg(pgid, signal.SIGKILL)


def state_of(sup: Supervisor, name: str) -> ProcessState | None:
    return next((s.state for s in sup.snapshot() if s.name == name), None)


def test_a_command_that_fails_at_once_ends_fatal_after_backoff_waits(
    supervisor: Supervisor,
) -> None:
    command = ["sh", "-c", "date +%s.%N; exit 3"]
    supervisor.add_program(ProgramConfig("bad", command, startsecs=0.5, startretries=3))
    assert supervisor.wait_for(lambda s: s[0].state is ProcessState.FATAL, 15)
    assert supervisor.wait_for(lambda _: len(child_lines(supervisor, "bad")) >= 4, 5)
    starts = [float(line) for line in child_lines(supervisor, "bad")]
    assert len(starts) == 4
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    for expected, gap in zip((1.0, 2.0, 3.0), gaps, strict=True):
        assert expected - 0.05 <= gap <= expected + 0.4, gaps
    snap = supervisor.snapshot()[0]
    assert snap.description.startswith("Exited too quickly")
    assert snap.pid is None and snap.restarts == 3


def test_a_fast_writer_is_never_blocked_and_the_buffer_keeps_the_last_lines(
    supervisor: Supervisor,
) -> None:
    code = (
        "import sys, time\n"
        "t = time.monotonic()\n"
        "w = sys.stdout.write\n"
        "for i in range(200_000):\n"
        "    w(f'line {i}\\n')\n"
        "sys.stdout.flush()\n"
        "print(f'took {time.monotonic() - t:.3f}', file=sys.stderr)\n"
    )
    config = ProgramConfig(
        "chatty", [sys.executable, "-c", code], startsecs=0, autorestart=False, log_lines=1000
    )
    supervisor.add_program(config)
    assert supervisor.wait_for(lambda s: s[0].state is ProcessState.EXITED, 60)
    wait_until("the last line", lambda: supervisor.output("chatty", 2)[0].startswith("took"), 10)
    lines = supervisor.output("chatty")
    assert len(lines) == 1000
    assert lines[-1].startswith("---- ") and "chatty: exited 0" in lines[-1]  # the exit's mark
    assert lines[0] == "line 199002" and lines[-3] == "line 199999"
    assert float(lines[-2].split()[1]) < 5.0  # writing never waited on a slow reader
    assert supervisor.snapshot()[0].exitstatus == 0
    assert supervisor.output("chatty", 3) == lines[-3:]


STUBBORN = """
import os, signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = os.fork()
if child == 0:
    while True:
        time.sleep(1)
print(f"pids {os.getpid()} {child}", flush=True)
while True:
    time.sleep(1)
"""


def test_stop_escalates_to_sigkill_of_the_whole_group(supervisor: Supervisor) -> None:
    config = ProgramConfig(
        "stubborn", [sys.executable, "-c", STUBBORN], startsecs=0.2, stopwaitsecs=1.0
    )
    supervisor.add_program(config)
    wait_until("the pids line", lambda: bool(supervisor.output("stubborn")), 10)
    assert supervisor.wait_for(lambda s: s[0].state is ProcessState.RUNNING, 10)
    main_pid, grandchild = map(int, supervisor.output("stubborn")[0].split()[1:])
    snap = supervisor.snapshot()[0]
    assert snap.pid == main_pid and snap.pgid is not None and snap.pgid != main_pid
    assert os.getpgid(main_pid) == os.getpgid(grandchild) == snap.pgid
    began = time.monotonic()
    supervisor.stop("stubborn")
    assert supervisor.wait_for(lambda s: s[0].state is ProcessState.STOPPED, 10)
    took = time.monotonic() - began
    assert 0.95 <= took <= 2.0
    assert supervisor.snapshot()[0].exitstatus == -signal.SIGKILL
    wait_until("the group to die", lambda: gone(main_pid) and gone(grandchild), 3)


def test_resource_figures_sum_over_the_process_group(supervisor: Supervisor) -> None:
    supervisor.add_program(
        ProgramConfig("pair", [sys.executable, "-c", STUBBORN], startsecs=0, stopwaitsecs=0.3)
    )
    wait_until("the pids line", lambda: bool(supervisor.output("pair")), 10)
    supervisor.sample_resources()
    snap = supervisor.snapshot()[0]
    main_pid, grandchild = map(int, supervisor.output("pair")[0].split()[1:])
    expected = sum(psutil.Process(p).memory_info().rss for p in (main_pid, grandchild))
    assert snap.rss_bytes is not None and snap.rss_bytes >= expected * 0.9
    assert snap.cpu_percent is not None


def test_scale_a_group_from_1_to_3_and_back_to_1(supervisor: Supervisor) -> None:
    def make(n: int) -> ProgramConfig:
        return ProgramConfig(f"worker-{n}", ["sleep", "600"], group="worker", startsecs=0.2)

    supervisor.scale("worker", 1, make)
    assert supervisor.wait_for(lambda s: [x.state for x in s] == [ProcessState.RUNNING], 10)
    supervisor.scale("worker", 3, make)
    assert supervisor.wait_for(
        lambda s: len(s) == 3 and all(x.state is ProcessState.RUNNING for x in s), 10
    )
    pids = {s.name: s.pid for s in supervisor.snapshot()}
    supervisor.scale("worker", 1, make)
    assert supervisor.wait_for(lambda s: [x.name for x in s] == ["worker-1"], 10)
    assert supervisor.snapshot()[0].pid == pids["worker-1"]
    for name in ("worker-2", "worker-3"):
        pid = pids[name]
        assert pid is not None
        wait_until(f"{name} to exit", partial(gone, pid), 3)


def test_an_unknown_command_backs_off_with_a_clear_message(supervisor: Supervisor) -> None:
    supervisor.add_program(
        ProgramConfig("typo", ["no-such-command-xyz"], startsecs=0.5, startretries=0)
    )
    assert supervisor.wait_for(lambda s: s[0].state is ProcessState.FATAL, 10)
    # the pump reads the last words a moment after the exit is seen
    assert supervisor.wait_for(
        lambda _: any("cannot run 'no-such-command-xyz'" in x for x in supervisor.output("typo")), 5
    )


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def test_the_supervisor_kills_the_group_of_a_guard_that_died(supervisor: Supervisor) -> None:
    # The program's child has no parent-death signal; with the guard's sentinel gone too, only
    # the supervisor's SIGKILL of the dead guard's group can take it down.
    code = "import os, time\nif os.fork():\n    print(os.getpid(), flush=True)\ntime.sleep(60)\n"
    supervisor.add_program(ProgramConfig("p", [sys.executable, "-c", code], startsecs=0.2))
    assert supervisor.wait_for(lambda _: bool(supervisor.output("p")), 10)
    guard = supervisor.snapshot()[0].pgid
    program = int(supervisor.output("p")[0])
    assert guard is not None
    members = [pid for pid in psutil.pids() if _pgid(pid) == guard]
    child = next(p.pid for p in psutil.Process(program).children())
    sentinel = next(pid for pid in members if pid not in (guard, program, child))
    os.kill(sentinel, signal.SIGKILL)
    wait_until("the sentinel to die", lambda: gone(sentinel), 5)
    os.kill(guard, signal.SIGKILL)
    wait_until("the program and its child to die", lambda: gone(program) and gone(child), 3)
