"""A SIGKILLed program: its exit is recorded, and marked in its output and in its log file."""

from __future__ import annotations

import os
import signal
import stat
import sys
from pathlib import Path

from console.programs import worker_program
from console.settings import Settings, WorkerGroup
from console.supervision.model import ProcessState, ProgramConfig
from console.supervision.supervisor import Supervisor
from tests.integration.test_supervision_processes import supervisor  # noqa: F401
from tests.waiting import wait_until

CHATTY = "import time\nwhile True:\n    print('tick', flush=True)\n    time.sleep(0.05)\n"


def test_sigkill_is_recorded_with_a_separator_in_output_and_log_file(
    supervisor: Supervisor,  # noqa: F811
    tmp_path: Path,
) -> None:
    logfile = tmp_path / "logs" / "chatty.log"
    config = ProgramConfig("chatty", [sys.executable, "-c", CHATTY], startsecs=0.2, logfile=logfile)
    supervisor.add_program(config)
    running = lambda: supervisor.snapshot()[0].state is ProcessState.RUNNING  # noqa: E731
    wait_until("running", running, 15)
    wait_until("output", lambda: "tick" in supervisor.output("chatty"), 10)
    pid = supervisor.snapshot()[0].pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    wait_until("the exit recorded", lambda: supervisor.snapshot()[0].exits != (), 10)
    wait_until("a restart", lambda: running() and supervisor.snapshot()[0].pid != pid, 20)
    snap = supervisor.snapshot()[0]
    (record,) = snap.exits
    assert record.cause == "killed by SIGKILL" and not record.expected and record.ran > 0
    marks = [line for line in supervisor.output("chatty") if line.startswith("---- ")]
    assert len(marks) == 1 and "chatty: killed by SIGKILL after" in marks[0], marks
    wait_until("the new run's output", lambda: "tick" in supervisor.output("chatty")[-1], 10)
    written = logfile.read_text()
    assert marks[0] in written and written.index(marks[0]) < written.rindex("tick")
    assert stat.S_IMODE(logfile.stat().st_mode) == 0o600
    supervisor.stop("chatty")
    wait_until("stopped", lambda: supervisor.snapshot()[0].state is ProcessState.STOPPED, 15)
    last = supervisor.snapshot()[0].exits[-1]
    assert last.expected and "chatty: stopped after" in supervisor.output("chatty")[-1]


def test_program_log_files_live_in_the_state_dir_and_can_be_turned_off(tmp_path: Path) -> None:
    settings = Settings(broker=None, broker_source="test", state_dir=tmp_path)
    settings = settings.with_broker("redis://127.0.0.1:1/0", "test")
    config = worker_program(settings, WorkerGroup(), 2)
    assert config.logfile == tmp_path / "logs" / "worker-2.log"
    assert (config.logfile_maxbytes, config.logfile_backups) == (10 * 1024 * 1024, 3)
    off = Settings(broker=settings.broker, broker_source="test", state_dir=tmp_path,
                   program_log_bytes=0)  # fmt: skip
    assert worker_program(off, WorkerGroup(), 1).logfile is None


def test_program_log_settings_come_from_sentry_conf(tmp_path: Path) -> None:
    from console.settings import SettingsError, resolve_settings

    conf = tmp_path / "sentry.conf.py"
    conf.write_text("CONSOLE_PROGRAM_LOG_BYTES = 0\nCONSOLE_PROGRAM_LOG_BACKUPS = 5\n")
    settings = resolve_settings(env={"SENTRY_CONF": str(conf)})
    assert (settings.program_log_bytes, settings.program_log_backups) == (0, 5)
    conf.write_text("CONSOLE_PROGRAM_LOG_BYTES = '10MB'\n")
    try:
        resolve_settings(env={"SENTRY_CONF": str(conf)})
    except SettingsError as exc:
        assert "CONSOLE_PROGRAM_LOG_BYTES must be a whole number" in str(exc)
    else:
        raise AssertionError("a bad size must be refused")
