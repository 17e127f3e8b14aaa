"""``sentry-console serve`` as a real process with real Celery workers, driven by ``ctl``."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from console.settings import console_id
from tests.chaos_support.helpers import descendants, wait_gone
from tests.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]
ROOT = Path(__file__).resolve().parents[2]


class Served:
    """A running ``serve`` and the environment every ``ctl`` call shares with it."""

    def __init__(self, env: dict[str, str], proc: subprocess.Popen[str], log: Path) -> None:
        self.env = env
        # The server, or a TUI on a pseudo-terminal in its place (a bytes Popen).
        self.proc: subprocess.Popen[str] | subprocess.Popen[bytes] = proc
        self.log = log
        self.seen: set[int] = set()

    def ctl(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run ``sentry-console ctl ARGS`` against this server."""
        command = [sys.executable, "-m", "console", "ctl", *args]
        return subprocess.run(
            command, env=self.env, capture_output=True, text=True, timeout=timeout, cwd=ROOT
        )

    def states(self) -> dict[str, tuple[str, int | None]]:
        """Program name -> (state, pid), from ``ctl status --json``."""
        import json

        out = self.ctl("status", "--json")
        assert out.returncode == 0, out.stderr
        return {p["name"]: (p["state"], p["pid"]) for p in json.loads(out.stdout)["processes"]}

    def serve_again(self) -> subprocess.Popen[str]:
        """Start the next ``serve`` on the same configuration (after this one has ended)."""
        return subprocess.Popen(
            [sys.executable, "-m", "console", "serve"],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=ROOT,
            start_new_session=True,
            text=True,
        )

    def clients(self) -> int:
        """Clients attached right now, counting the ``ctl status`` that asks."""
        import json

        out = self.ctl("status", "--json")
        return int(json.loads(out.stdout)["clients"]) if out.returncode == 0 else 0

    def wait_running(self, names: set[str], timeout: float = 90) -> dict[str, int]:
        """Wait until exactly ``names`` run; their pids."""

        def up() -> bool:
            assert self.proc.poll() is None, self.log.read_text()
            return self.ctl("status").returncode == 0

        wait_until("the server to listen", up, 60, step=0.2)

        def running() -> bool:
            states = self.states()
            return set(states) == names and all(s == "RUNNING" for s, _ in states.values())

        wait_until(f"{sorted(names)} RUNNING", running, timeout, step=0.3)
        self.seen.update(descendants(self.proc.pid))
        return {name: pid for name, (_, pid) in self.states().items() if pid}


def write_conf(path: Path, workers: int, cron: bool) -> Path:
    group = {"name": "worker", "processes": workers, "concurrency": 1}
    path.write_text(
        f"CONSOLE_WORKERS = [{group!r}]\nCONSOLE_CRON = {cron!r}\nCONSOLE_REFRESH_INTERVAL = 0.5\n"
    )
    return path


@contextlib.contextmanager
def serve(
    redis_url: str,
    state_dir: Path,
    unique: str,
    *,
    workers: int = 1,
    cron: bool = False,
    **env: str,
) -> Iterator[Served]:
    """``serve`` in its own session; everything it started is killed afterwards."""
    full = dict(os.environ)
    full.pop("NOTIFY_SOCKET", None)
    full.update(
        SENTRY_CONF=str(write_conf(state_dir.parent / "sentry.conf.py", workers, cron)),
        SENTRY_CONSOLE_STATE_DIR=str(state_dir),
        SENTRY_BROKER_URL=redis_url,
        SENTRY_QUEUE_SUFFIX=f"-{unique}",
        SENTRY_EVENT_STORE=str(state_dir / "events.sqlite3"),
        PYTHONUNBUFFERED="1",
    )
    full.update(env)
    log = state_dir.parent / "serve.err"
    with open(log, "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "console", "serve"],
            env=full,
            stdout=err,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=ROOT,
            start_new_session=True,
        )
    served = Served(full, proc, log)
    try:
        yield served
    finally:
        for started in {proc, served.proc}:  # a test may have started another in its place
            served.seen.update(descendants(started.pid))
            with contextlib.suppress(ProcessLookupError):
                os.killpg(started.pid, signal.SIGKILL)
            started.wait(10)
        for pid in served.seen:
            with contextlib.suppress(psutil.Error):
                psutil.Process(pid).kill()


def test_ctl_drives_a_served_console_and_shutdown_stops_it_warm(
    redis_url: str, state_dir: Path, unique: str
) -> None:
    with serve(redis_url, state_dir, unique, workers=1) as served:
        pids = served.wait_running({"worker-1"})

        scaled = served.ctl("scale", "worker", "2")
        assert scaled.returncode == 0 and "scaling to 2" in scaled.stdout, scaled
        pids = served.wait_running({"worker-1", "worker-2"})

        before = pids["worker-1"]
        restarted = served.ctl("restart", "worker-1")
        assert restarted.returncode == 0, restarted
        wait_until(
            "a new worker-1",
            lambda: (
                served.states()["worker-1"] == ("RUNNING", served.states()["worker-1"][1])
                and served.states()["worker-1"][1] != before
            ),
            60,
            step=0.3,
        )

        tail = served.ctl("tail", "-n", "5", "worker-2")
        assert tail.returncode == 0 and tail.stdout.strip(), tail

        follower = subprocess.Popen(
            [sys.executable, "-m", "console", "ctl", "tail", "-f", "-n", "0", "worker-1"],
            env=served.env,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        lines: list[str] = []
        assert follower.stdout is not None
        threading.Thread(target=lambda: lines.extend(follower.stdout or ()), daemon=True).start()
        try:
            wait_until("the follower attached", lambda: served.clients() >= 2, 30)  # + this one
            served.ctl("restart", "worker-1")  # the new worker prints its banner: followed live
            # The replacement starts beside the old worker, on the slot's other node name; a
            # console on a state directory of its own puts its id in the name.
            ident = console_id(state_dir)
            node = rf"worker-1\.{ident}" if ident else "worker-1"
            banner = re.compile(rf"{node}(-b)?@")
            wait_until("followed output", lambda: any(banner.search(line) for line in lines), 60)
        finally:
            follower.kill()  # a client's death touches no program
            follower.wait(10)
        both = {"worker-1", "worker-2"}  # the replaced worker-1~old gone after its warm stop
        wait_until("the old worker-1 gone", lambda: set(served.states()) == both, 60, step=0.3)

        for args, code, words in (
            (("restart", "nothing"), 1, "no program or group"),
            (("scale", "nogroup", "2"), 1, "no worker group"),
            (("scale", "worker", "-1"), 2, "error:"),
            (("--read-only", "stop", "worker"), 1, "read-only"),
        ):
            out = served.ctl(*args)
            assert out.returncode == code and words in out.stderr, (args, out)

        found = descendants(served.proc.pid)
        stopped = served.ctl("shutdown")
        assert stopped.returncode == 0 and "stopped" in stopped.stdout, stopped
        assert served.proc.wait(60) == 0
        assert wait_gone(found, 3.0) == []
        gone = served.ctl("status")
        assert gone.returncode == 3 and "no sentry-console server" in gone.stderr, gone
        assert "user " in (state_dir / "console.log").read_text()


def test_a_second_server_for_the_same_state_directory_refuses(
    redis_url: str, state_dir: Path, unique: str
) -> None:
    with serve(redis_url, state_dir, unique, workers=1) as served:
        served.wait_running({"worker-1"})
        second = subprocess.run(
            [sys.executable, "-m", "console", "serve"],
            env=served.env,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
        )
        assert second.returncode == 1
        assert f"server (pid {served.proc.pid}) is already running" in second.stderr, second.stderr
        assert len(second.stderr.strip().splitlines()) == 1
        assert served.proc.poll() is None


def test_sigkill_of_the_server_leaves_nothing_within_3_seconds(
    redis_url: str, state_dir: Path, unique: str
) -> None:
    with serve(redis_url, state_dir, unique, workers=2, cron=True) as served:
        served.wait_running({"worker-1", "worker-2", "cron"})
        wait_until("pool children", lambda: len(descendants(served.proc.pid)) >= 8, 30)
        found = descendants(served.proc.pid)
        served.proc.kill()
        served.proc.wait(5)
        assert wait_gone(found, 3.0) == []
        # The next server replaces the socket the dead one left.
        served.proc = served.serve_again()
        served.wait_running({"worker-1", "worker-2", "cron"})


def test_serve_speaks_systemds_notify_protocol(
    redis_url: str, state_dir: Path, unique: str, tmp_path: Path
) -> None:
    address = tmp_path / "notify.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(address))
    listener.settimeout(1.0)
    received: list[str] = []

    def wait_for(prefix: str, timeout: float) -> str:
        def line() -> str | None:
            with contextlib.suppress(TimeoutError):  # the recv timeout paces the polls
                received.append(listener.recv(4096).decode())
            lines = (ln for message in received for ln in message.splitlines())
            return next((ln for ln in lines if ln.startswith(prefix)), None)

        return wait_until(prefix, line, timeout, step=0, seen=lambda: received)

    try:
        with serve(
            redis_url,
            state_dir,
            unique,
            workers=1,
            NOTIFY_SOCKET=str(address),
            WATCHDOG_USEC="2000000",
        ) as served:
            assert wait_for("READY=1", 90)
            ready = next(m for m in received if "READY=1" in m)
            assert "STATUS=1 RUNNING" in ready, ready
            assert wait_for("WATCHDOG=1", 5)
            received.clear()
            assert wait_for("WATCHDOG=1", 3), "the watchdog keeps coming"
            served.proc.send_signal(signal.SIGTERM)
            assert wait_for("STOPPING=1", 30)
            assert served.proc.wait(60) == 0
            assert "RUNNING" not in "".join(m for m in received if m.startswith("READY"))
    finally:
        listener.close()


def on_pty(argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start ``argv`` on a fresh pseudo-terminal whose output is always drained."""
    master, slave = os.openpty()
    try:
        proc = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=ROOT, start_new_session=True
        )
    finally:
        os.close(slave)

    def drain() -> None:
        with contextlib.suppress(OSError):
            while os.read(master, 65536):
                pass
        os.close(master)

    threading.Thread(target=drain, daemon=True).start()
    return proc


def test_a_lost_terminal_only_detaches_and_the_next_tui_attaches(
    redis_url: str, state_dir: Path, unique: str
) -> None:
    import json

    with serve(redis_url, state_dir, unique, workers=1) as served:
        served.proc.kill()  # this test starts its server through the TUI instead
        served.proc.wait(10)
        tui = on_pty([sys.executable, "-m", "console"], served.env)
        served.proc = tui
        try:
            pids = served.wait_running({"worker-1"})
            status = json.loads(served.ctl("status", "--json").stdout)
            server_pid = status["server"]["pid"]
            served.seen.add(server_pid)
            assert server_pid != tui.pid
            assert os.getsid(server_pid) != os.getsid(tui.pid), "the server has its own session"

            tui.send_signal(signal.SIGHUP)  # the terminal went away
            assert tui.wait(15) is not None
            assert served.states() == {"worker-1": ("RUNNING", pids["worker-1"])}
            assert psutil.pid_exists(server_pid)

            second = on_pty([sys.executable, "-m", "console"], served.env)
            served.proc = second
            wait_until("the second TUI attached", lambda: served.clients() >= 2, 30, step=0.3)
            second.send_signal(signal.SIGTERM)  # a client's death never touches a program
            assert second.wait(15) is not None
            assert served.states() == {"worker-1": ("RUNNING", pids["worker-1"])}

            found = descendants(server_pid)
            assert served.ctl("shutdown").returncode == 0
            assert wait_gone([server_pid, *found], 10.0) == []
        finally:
            for pid in served.seen:
                with contextlib.suppress(psutil.Error):
                    psutil.Process(pid).kill()


def test_sigterm_of_the_server_stops_warm_and_the_next_server_loses_nothing(
    redis_url: str, state_dir: Path, unique: str
) -> None:
    from console.eventgen import send_events
    from tests.chaos_support.helpers import store_count
    from workers.app import make_app

    total = 1200
    store = state_dir / "events.sqlite3"
    with serve(redis_url, state_dir, unique, workers=2) as served:
        served.wait_running({"worker-1", "worker-2"})
        app = make_app(served.env)
        sender = threading.Thread(
            target=send_events, args=(app, "workers.process_event", total), kwargs={"rate": 500}
        )
        sender.start()
        try:
            wait_until("events flowing into the store", lambda: store_count(store) >= 150, 60)
            found = descendants(served.proc.pid)
            served.proc.send_signal(signal.SIGTERM)  # systemd's stop: warm, tasks finish
            assert served.proc.wait(90) == 0
            assert wait_gone(found, 3.0) == []
        finally:
            sender.join(120)
        stored_at_stop = store_count(store)
        assert stored_at_stop < total, "the stop came too late to prove anything"

        served.proc = served.serve_again()
        wait_until(f"{total} rows", lambda: store_count(store) >= total, 180, step=0.5)
        assert store_count(store) == total
        print(f"{stored_at_stop} rows at the stop, {total} after the next server")


def test_a_server_without_metrics_loads_no_exporter(
    redis_url: str, state_dir: Path, unique: str
) -> None:
    # The interpreter's import log, on the server's stderr, names every module it loaded.
    with serve(redis_url, state_dir, unique, workers=1, PYTHONPROFILEIMPORTTIME="1") as served:
        served.wait_running({"worker-1"})
        loaded = {
            line.rsplit("|", 1)[1].strip()
            for line in served.log.read_text().splitlines()
            if line.startswith("import time:") and "|" in line
        }
    assert {"celery", "console.runtime", "console.metrics.options"} <= loaded, "the log is read"
    assert not {m for m in loaded if m.startswith(("prometheus_client", "http.server"))}
