"""`status`: exit 2 when a program is FATAL, last exits and reasons in JSON, quiet into `| head`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from console.broker.embedded import ConsoleLock
from console.snapshot import process_json
from console.statusfile import STATUS_FILE
from console.supervision.model import ProcessState
from tests.integration.test_cli_headless import cli_env, run  # noqa: F401 (fixture)
from tests.supervision_support.fakes import Behaviour, drive, make_supervisor, program


@pytest.fixture
def console_with_a_fatal_program(state_dir: Path) -> Iterator[None]:
    """What a running console leaves: its lock held, and a status file with a FATAL program."""
    sup, clock, spawner = make_supervisor()
    spawner.behaviours["worker-2"] = Behaviour(exit_after=0.0, exit_status=3)
    sup.add_program(program("worker-1", group="worker", startsecs=0.1))
    sup.add_program(program("worker-2", group="worker", startretries=1))
    drive(sup, clock, lambda: sup.snapshot()[1].state is ProcessState.FATAL)
    drive(sup, clock, lambda: sup.snapshot()[0].state is ProcessState.RUNNING)
    sup.stop("worker-1")  # a warm stop: its last exit is the stop signal
    drive(sup, clock, lambda: sup.snapshot()[0].state is ProcessState.STOPPED)
    sup.start("worker-1")
    drive(sup, clock, lambda: sup.snapshot()[0].state is ProcessState.RUNNING)
    lock = ConsoleLock(state_dir)
    lock.acquire()
    processes = [process_json(p) for p in sup.snapshot()]
    status = {"pid": os.getpid(), "taken_at": time.time(), "processes": processes, "errors": {}}
    (state_dir / STATUS_FILE).write_text(json.dumps(status))
    try:
        yield
    finally:
        lock.release()
        sup.shutdown(timeout=1)


@pytest.mark.usefixtures("console_with_a_fatal_program")
def test_status_exits_2_on_fatal_and_names_each_exit(
    cli_env: dict[str, str | None],  # noqa: F811
    redis_url: str,
) -> None:
    result = run(cli_env, redis_url, "status", "--json")
    assert result.exit_code == 2, result.output
    assert "error: worker-2 is FATAL: Exited too quickly" in result.stderr
    processes = {p["name"]: p for p in json.loads(result.stdout)["console"]["processes"]}
    one, two = processes["worker-1"], processes["worker-2"]
    assert one["reason"] is None
    assert one["last_exit"]["signal"] == "SIGTERM" and one["last_exit"]["code"] is None
    assert two["last_exit"]["code"] == 3 and two["last_exit"]["signal"] is None
    assert abs(two["last_exit"]["at"] - time.time()) < 60
    assert two["reason"].startswith("Exited too quickly")
    text = run(cli_env, redis_url, "status")
    assert text.exit_code == 2 and "FATAL" in text.stdout and "Exited too quickly" in text.stdout


def test_status_into_a_closed_pipe_prints_no_traceback(
    cli_env: dict[str, str | None],  # noqa: F811
    redis_url: str,
) -> None:
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first line, as `| head -0` would be
    full = {k: v for k, v in os.environ.items() if cli_env.get(k, "") is not None}
    full.update({k: v for k, v in cli_env.items() if v is not None})
    proc = subprocess.Popen(
        [sys.executable, "-m", "console", "--broker", redis_url, "status"],
        env=full,
        stdout=write,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    os.close(write)
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert "BrokenPipeError" not in err and "Traceback" not in err, err
    assert proc.returncode == 1  # click's quiet exit for a closed stdout
