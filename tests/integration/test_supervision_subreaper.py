"""The guard adopts what its program leaves behind in other sessions, reaps it and kills it."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

from console.supervision import ProgramConfig, Supervisor
from tests.chaos_support.helpers import gone, wait_gone
from tests.waiting import wait_until

# The program double-forks: its child starts a new session (out of the guard's process group)
# and forks the grandchild, then exits, orphaning it. The grandchild reports its pid and lives
# for as many seconds as the program's argument says. Each line is one write(2), so the two
# processes' lines never interleave.
ESCAPES = r"""
import os, sys, time
child = os.fork()
if child == 0:
    os.setsid()
    grandchild = os.fork()
    if grandchild == 0:
        os.write(1, f"grandchild {os.getpid()} session {os.getsid(0)}\n".encode())
        time.sleep(float(sys.argv[1]))
        os._exit(0)
    os._exit(0)
os.waitpid(child, 0)
os.write(1, b"orphaned\n")
while True:
    time.sleep(1)
"""


@dataclass
class Supervised:
    """A running supervisor and the pids of the grandchildren that escaped its groups."""

    sup: Supervisor
    escaped: list[int] = field(default_factory=list)

    def start_escaping(self, lives: float) -> tuple[int, int]:
        """Start the program; return the guard's pid and the grandchild's."""
        argv = [sys.executable, "-c", ESCAPES, str(lives)]
        self.sup.add_program(ProgramConfig("escapes", argv, startsecs=0.1))
        output = functools.partial(self.sup.output, "escapes")
        line = wait_until(
            "the grandchild's pid",
            lambda: next((x for x in output() if x.startswith("grandchild")), None),
            timeout=20,
            seen=output,
        )
        grandchild = int(line.split()[1])
        self.escaped.append(grandchild)
        wait_until("the grandchild orphaned", lambda: "orphaned" in output(), 20, seen=output)
        guard = next(s.pgid for s in self.sup.snapshot() if s.name == "escapes")
        assert guard is not None
        assert os.getsid(grandchild) != os.getsid(guard), "the grandchild left the guard's session"
        return guard, grandchild


@pytest.fixture
def supervised() -> Iterator[Supervised]:
    """A running supervisor, shut down at the end; escaped grandchildren are killed by pid."""
    running = Supervised(Supervisor(tick_interval=0.05))
    running.sup.run_in_background()
    try:
        yield running
    finally:
        running.sup.shutdown()
        for pid in running.escaped:
            if not gone(pid):
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)


def test_shutdown_kills_a_grandchild_that_left_in_its_own_session(supervised: Supervised) -> None:
    guard, grandchild = supervised.start_escaping(lives=300)
    supervised.sup.shutdown()
    assert wait_gone([grandchild], 5.0) == [], "the escaped grandchild outlived the shutdown"
    assert wait_gone([guard], 5.0) == []


def test_an_adopted_process_that_exits_is_reaped(supervised: Supervised) -> None:
    _guard, grandchild = supervised.start_escaping(lives=0.5)

    def reaped() -> bool:
        try:
            psutil.Process(grandchild)
        except psutil.NoSuchProcess:
            return True
        return False  # running, or a zombie nobody reaps

    wait_until("the adopted grandchild reaped", reaped, timeout=10)


# A supervisor in a process of its own, running the escaping program; it prints the guard's and
# the grandchild's pids, then waits to be killed.
SUPERVISOR = """
import sys, time
from console.supervision import ProgramConfig, Supervisor
sup = Supervisor(tick_interval=0.05)
sup.add_program(ProgramConfig("escapes", [sys.executable, "-c", sys.argv[1], "300"]))
sup.run_in_background()
deadline = time.monotonic() + 20
while not any(line == "orphaned" for line in sup.output("escapes")):
    assert time.monotonic() < deadline, sup.output("escapes")
    time.sleep(0.02)
grandchild = next(x for x in sup.output("escapes") if x.startswith("grandchild")).split()[1]
print(sup.snapshot()[0].pgid, grandchild, flush=True)
while True:
    time.sleep(1)
"""


def test_a_sigkilled_supervisor_takes_the_escaped_grandchild_along() -> None:
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-c", SUPERVISOR, ESCAPES],
        stdout=subprocess.PIPE,
        text=True,
        cwd=root,
        start_new_session=True,
    )
    pids: list[int] = []
    try:
        assert proc.stdout is not None
        pids = [int(p) for p in proc.stdout.readline().split()]  # the script's own deadline
        assert len(pids) == 2, "the supervisor script failed"
        guard, grandchild = pids
        assert os.getsid(grandchild) != os.getsid(guard)
        proc.kill()
        proc.wait(10)
        assert wait_gone([grandchild], 5.0) == [], "the escaped grandchild outlived its supervisor"
        assert wait_gone([guard], 5.0) == []
    finally:
        with contextlib.suppress(OSError):
            proc.kill()
        proc.wait(10)
        for pid in pids:
            if not gone(pid):
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
