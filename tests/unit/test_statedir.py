"""The state directory in one module: its default place, its lock, its sockets, one error type."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from console import statedir
from console.broker import embedded
from console.server import protocol
from console.statedir import (
    ConsoleAlreadyRunning,
    ConsoleLock,
    StateDirError,
    default_state_dir,
    fitting_socket,
)
from tests.unit.test_bad_input import check_error, redis_url, run_cli


def test_the_broker_module_re_exports_the_same_objects() -> None:
    assert embedded.ConsoleLock is ConsoleLock
    assert embedded.ConsoleAlreadyRunning is ConsoleAlreadyRunning
    assert embedded.default_state_dir is default_state_dir


def test_another_console_is_a_state_dir_error_naming_its_pid() -> None:
    error = ConsoleAlreadyRunning(1234)
    assert isinstance(error, StateDirError)
    assert "pid 1234" in str(error)
    assert "unknown pid" in str(ConsoleAlreadyRunning(0))


def test_the_lock_refuses_a_state_dir_that_is_not_a_directory(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.write_text("")
    with pytest.raises(StateDirError, match="not a directory"):
        ConsoleLock(state).acquire()


def test_the_lock_makes_a_private_directory_and_records_its_pid(tmp_path: Path) -> None:
    state = tmp_path / "a" / "state"
    with ConsoleLock(state) as lock:
        assert lock.held
        assert (state.stat().st_mode & 0o777) == 0o700
        assert lock.path == state / statedir.LOCK_NAME
        assert lock.path.read_text().strip() == str(os.getpid())
        assert ConsoleLock.held_by_other(state) is None  # this process holds it
    assert ConsoleLock.held_by_other(state) is None


def test_every_socket_falls_back_the_same_way(tmp_path: Path) -> None:
    short = tmp_path / "s"
    assert fitting_socket(short / "broker", short, "redis.sock") == short / "broker" / "redis.sock"
    deep = tmp_path / ("d" * 120)
    fallback = statedir.short_socket(deep, "redis.sock")
    assert fitting_socket(deep / "broker", deep, "redis.sock") == fallback
    assert embedded.socket_path_for(deep) == fallback
    assert statedir.short_socket(deep, protocol.SOCKET_NAME) in protocol.socket_candidates(deep)


@pytest.mark.parametrize("command", [["serve"], []], ids=["serve", "tui"])
def test_an_unusable_state_dir_is_one_line(tmp_path: Path, command: list[str]) -> None:
    state = tmp_path / "state"
    state.write_text("")
    code, stderr = run_cli(
        command, {"SENTRY_CONSOLE_STATE_DIR": str(state), "SENTRY_BROKER_URL": redis_url()}
    )
    check_error(code, stderr, "not a directory")
