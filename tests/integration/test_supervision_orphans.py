"""A supervisor in its own process: SIGKILLed it leaves nothing; signalled it shuts down warm."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chaos_support.helpers import gone, wait_gone

CONSOLE = r'''
import json, os, sys, time
from console.supervision import ProgramConfig, Supervisor, install_shutdown_signals

PROGRAM = """
import os, signal, sys, time
log = os.environ["SC_TEST_LOG"]
def note(text):
    with open(log, "a") as handle:
        handle.write(f"{text} {os.getpid()}\\n")
child = os.fork()
if child == 0:
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    while True:
        time.sleep(1)
def warm(*_):
    note("sigterm")
    time.sleep(0.5)
    note("finished")
    sys.exit(0)
signal.signal(signal.SIGTERM, warm)
print(f"pids {os.getpid()} {child}", flush=True)
while True:
    time.sleep(1)
"""

sup = Supervisor(tick_interval=0.05)
for n in (1, 2):
    sup.add_program(ProgramConfig(f"p{n}", [sys.executable, "-c", PROGRAM], startsecs=0.2))

def on_signal(signum):
    sup.shutdown()
    print(json.dumps([[s.state, s.exitstatus] for s in sup.snapshot()]), flush=True)
    sys.exit(0)

install_shutdown_signals(on_signal)
sup.run_in_background()
deadline = time.monotonic() + 20
while not all(sup.output(n) for n in ("p1", "p2")):
    assert time.monotonic() < deadline, "programs did not start"
    time.sleep(0.02)
pids = [int(p) for n in ("p1", "p2") for p in sup.output(n)[0].split()[1:]]
groups = [s.pgid for s in sup.snapshot()]
print(json.dumps({"pids": pids, "groups": groups}), flush=True)
while True:
    time.sleep(1)
'''


class Console:
    """The supervisor script running as a separate process."""

    def __init__(self, tmp_path: Path) -> None:
        self.log = tmp_path / "programs.log"
        script = tmp_path / "console_script.py"
        script.write_text(CONSOLE)
        env = dict(os.environ, SC_TEST_LOG=str(self.log), PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            [sys.executable, str(script)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=Path(__file__).resolve().parents[2],
            start_new_session=True,  # so a test signal never reaches pytest
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # the script asserts its own 20 s deadline
        info = json.loads(line)
        self.pids: list[int] = info["pids"]
        self.groups: list[int] = info["groups"]
        self.descendants = self.pids + self.groups  # the groups' leaders are the guards

    def cleanup(self) -> None:
        """Kill whatever is left, whatever the test did."""
        with contextlib.suppress(OSError):
            self.proc.kill()
        for pgid in self.groups:
            with contextlib.suppress(OSError):
                os.killpg(pgid, signal.SIGKILL)
        self.proc.wait(10)


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Console]:
    """A running supervisor process with two programs, each with a grandchild."""
    running = Console(tmp_path)
    try:
        yield running
    finally:
        running.cleanup()


def test_sigkilled_console_leaves_no_descendant_within_3_seconds(console: Console) -> None:
    assert len(console.pids) == 4 and all(not gone(p) for p in console.descendants)
    console.proc.kill()
    console.proc.wait(5)
    began = time.monotonic()
    assert wait_gone(console.descendants, 3.0) == []
    print(f"all descendants gone {time.monotonic() - began:.3f}s after SIGKILL")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_shutdown_signal_gives_children_a_warm_shutdown(console: Console, signum: int) -> None:
    console.proc.send_signal(signum)
    assert console.proc.stdout is not None
    final = json.loads(console.proc.stdout.readline())
    assert console.proc.wait(15) == 0
    assert final == [["STOPPED", 0], ["STOPPED", 0]]  # SIGTERM handled, work finished, exit 0
    notes = console.log.read_text().split("\n")
    for main_pid in console.pids[0::2]:
        assert f"sigterm {main_pid}" in notes and f"finished {main_pid}" in notes
    assert wait_gone(console.descendants, 3.0) == []


def test_sigkilled_guard_takes_its_program_with_it(console: Console) -> None:
    guard, program = console.groups[0], console.pids[0:2]  # the program and its own child
    assert not gone(guard) and all(not gone(p) for p in program)
    os.kill(guard, signal.SIGKILL)
    began = time.monotonic()
    assert wait_gone(program, 3.0) == []
    print(f"program gone {time.monotonic() - began:.3f}s after its guard's SIGKILL")
    assert console.proc.poll() is None  # the supervisor itself carries on


def test_guard_and_supervisor_sigkilled_together_leave_nothing(console: Console) -> None:
    assert all(not gone(p) for p in console.descendants)
    os.kill(console.groups[0], signal.SIGKILL)
    console.proc.kill()
    console.proc.wait(5)
    began = time.monotonic()
    assert wait_gone(console.descendants, 3.0) == []
    print(f"all descendants gone {time.monotonic() - began:.3f}s after the double SIGKILL")
