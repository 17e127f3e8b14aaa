"""The console's own log: a bounded rotating file, an audit trail, no password, no terminal."""

from __future__ import annotations

import getpass
import logging
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from console.consolelog import audit, audited, close_console_log, setup_console_log
from console.supervision.model import ProcessState
from tests.supervision_support.fakes import drive, make_supervisor, program

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def log_file(tmp_path: Path) -> Iterator[Path]:
    """The console's log set up in a fresh state directory, closed afterwards."""
    path = setup_console_log(tmp_path / "state")
    try:
        yield path
    finally:
        close_console_log()


def test_the_log_lives_in_the_state_dir_and_audits_with_the_os_user(log_file: Path) -> None:
    assert log_file.parent.name == "state" and log_file.name == "console.log"
    audit("restart worker-2", "done")
    line = log_file.read_text().splitlines()[-1]
    assert line.endswith(f"sentry_console.audit: user {getpass.getuser()}: restart worker-2: done")
    assert line[:4].isdigit()  # when: the line starts with its time stamp
    assert log_file.stat().st_mode & 0o077 == 0


def test_no_password_reaches_the_file(log_file: Path) -> None:
    logger = logging.getLogger("sentry_console.broker")
    logger.warning("broker %s down", "redis://:hunter22@10.0.0.1:6379/0")
    try:
        raise ConnectionError("amqp://guest:s3cret@rabbit:5672// refused")
    except ConnectionError:
        logger.exception("connect failed")
    text = log_file.read_text()
    assert "hunter22" not in text and "s3cret" not in text
    assert "redis://:***@10.0.0.1:6379/0" in text


def test_the_file_rotates_and_stays_bounded(tmp_path: Path) -> None:
    path = setup_console_log(tmp_path, max_bytes=2_000, backups=2)
    try:
        for n in range(500):
            audit(f"scale +{n}", "worker: scaling")
    finally:
        close_console_log()
    files = sorted(tmp_path.glob("console.log*"))
    assert [f.name for f in files] == ["console.log", "console.log.1", "console.log.2"]
    assert all(f.stat().st_size <= 2_000 for f in files)
    assert "scale +499" in path.read_text()


def test_nothing_reaches_the_terminal() -> None:
    code = (
        "import logging, pathlib, sys, tempfile\n"
        "from console.consolelog import log, setup_console_log\n"
        "log.getChild('cluster').error('before set-up')\n"
        "setup_console_log(pathlib.Path(tempfile.mkdtemp()))\n"
        "log.getChild('cluster').error('after set-up')\n"
        "logging.getLogger('sentry_console.supervision').critical('a child logger')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout == "" and out.stderr == ""


def test_program_state_changes_are_logged(log_file: Path) -> None:
    sup, clock, _ = make_supervisor()
    sup.add_program(program("worker-1", startsecs=1.0))
    drive(sup, clock, lambda: sup.snapshot()[0].state is ProcessState.RUNNING)
    sup.stop("worker-1")
    drive(sup, clock, lambda: sup.snapshot()[0].state is ProcessState.STOPPED)
    text = log_file.read_text()
    for change in (
        "worker-1: STOPPED -> STARTING (pid 101)",
        "worker-1: STARTING -> RUNNING (pid 101)",
        "worker-1: RUNNING -> STOPPING (pid 101)",
        "worker-1: exited: terminated by SIGTERM",
        "worker-1: STOPPING -> STOPPED",
    ):
        assert f"sentry_console.supervision: {change}" in text


@dataclass
class Result:
    """Shaped like the typed action results the runtime is moving to."""

    outcome: str
    message: str


class Actions:
    @audited("restart {name}")
    def restart(self, name: str) -> Result:
        return Result("done", f"restarting {name}")

    @audited("purge {queue}")
    def purge(self, queue: str) -> str:
        raise RuntimeError("broker went away")


def test_audited_actions_log_their_result_or_failure(log_file: Path) -> None:
    actions = Actions()
    actions.restart("worker-2")
    with pytest.raises(RuntimeError):
        actions.purge("events.save_event")
    text = log_file.read_text()
    user = getpass.getuser()
    assert f"user {user}: restart worker-2: done: restarting worker-2" in text
    assert f"user {user}: purge events.save_event: failed: RuntimeError: broker went away" in text


def test_setting_up_the_same_log_twice_keeps_its_handler(log_file: Path, tmp_path: Path) -> None:
    def file_handlers() -> list[logging.Handler]:
        handlers = logging.getLogger("sentry_console").handlers
        return [h for h in handlers if isinstance(h, logging.FileHandler)]

    before = file_handlers()
    audit("first", "done")
    assert setup_console_log(tmp_path / "state") == log_file  # the server, then its runtime
    assert file_handlers() == before and len(before) == 1  # the same open file, not reopened
    audit("second", "done")
    assert [line.split(": ")[-2] for line in log_file.read_text().splitlines()[-2:]] == [
        "first",
        "second",
    ]
    other = setup_console_log(tmp_path / "other")  # another state directory: moves there
    assert file_handlers() != before
    audit("third", "done")
    assert "third" in other.read_text() and "third" not in log_file.read_text()
