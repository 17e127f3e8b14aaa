"""`watch --json` and `control`: real workers on two "hosts", every command confirmed by a reply."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from console.cluster import RemoteControl
from tests.cluster_support.app import make_app
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
APP = "tests.cluster_support.app:app"
WORKER_APP = "tests.cluster_support.app"

pytestmark = pytest.mark.slow


def env_for(redis_url: str, unique: str, state_dir: Path) -> dict[str, str]:
    env = dict(os.environ, SC_TEST_BROKER_URL=redis_url, SC_TEST_SUFFIX=unique)
    env |= {"SENTRY_BROKER_URL": redis_url, "SENTRY_CONSOLE_STATE_DIR": str(state_dir)}
    env |= {"SENTRY_CONSOLE_REFRESH": "0.3"}
    env.pop("SENTRY_CONF", None)
    return env


def console(
    env: dict[str, str], *args: str, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "console", "--app", APP, *args]
    return subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def two_hosts(
    redis_url: str, unique: str, tmp_path: Path
) -> Iterator[tuple[Celery, list[str], list[subprocess.Popen[bytes]]]]:
    """Two real workers named as if on hosts alpha and bravo, each in its own process group."""
    names = [f"w1@alpha-{unique}", f"w2@bravo-{unique}"]
    env = env_for(redis_url, unique, tmp_path)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for name in names:
            cmd = [sys.executable, "-m", "celery", "-A", WORKER_APP, "worker", "-n", name,
                   "-P", "prefork", "-c", "1", "-E", "-l", "INFO",
                   "--without-mingle", "--without-gossip"]  # fmt: skip
            with open(tmp_path / f"{name}.log", "wb") as log:
                procs.append(
                    subprocess.Popen(
                        cmd,
                        cwd=ROOT,
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        app = make_app(redis_url, unique)
        control = RemoteControl(app, timeout=2.0)
        wait_until("both workers answer", lambda: all(control.ping(names).values()))
        control.close()
        yield app, names, procs
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


class JsonLines:
    """``watch --json`` running; the latest line it printed, read on a thread."""

    def __init__(self, env: dict[str, str]) -> None:
        cmd = [sys.executable, "-m", "console", "--app", APP, "watch", "--json"]
        self.proc = subprocess.Popen(
            cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, start_new_session=True
        )
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.latest: dict[str, Any] = {}
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.latest = json.loads(raw)
            self.lines.put(self.latest)

    def workers(self) -> dict[str, dict[str, Any]]:
        return {w["hostname"]: w for w in self.latest.get("workers", [])}

    def close(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=15)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)


def test_watch_needs_a_broker(tmp_path: Path) -> None:
    env = dict(os.environ, SENTRY_CONSOLE_STATE_DIR=str(tmp_path))
    for key in ("SENTRY_BROKER_URL", "SENTRY_CONF"):
        env.pop(key, None)
    done = console(env, "watch", "--json")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "error: watch needs a broker: set SENTRY_BROKER_URL, BROKER_URL in SENTRY_CONF, or --broker"
    ]


def test_watch_lists_every_worker_with_its_host_and_control_confirms(
    two_hosts: tuple[Celery, list[str], list[subprocess.Popen[bytes]]],
    redis_url: str,
    unique: str,
    tmp_path: Path,
) -> None:
    app, (alpha, bravo), procs = two_hosts
    env = env_for(redis_url, unique, tmp_path)
    watch = JsonLines(env)
    try:
        workers = wait_until(
            "both workers listed online with their queues",
            lambda: (
                (w := watch.workers())
                and all(w.get(n, {}).get("online") and w[n]["queues"] for n in (alpha, bravo))
                and w
            ),
            seen=lambda: watch.latest,
        )
        assert workers[alpha]["host"] == f"alpha-{unique}"
        assert workers[bravo]["host"] == f"bravo-{unique}"
        assert workers[alpha]["queues"] == [f"cluster-test-{unique}"]
        assert watch.latest["broker"]["state"] == "connected"

        # Pool grow: the worker's reply printed, and its stats agree.
        grown = console(env, "control", "pool", alpha, "1")
        assert grown.returncode == 0, grown.stderr
        assert grown.stdout.strip() == f"{alpha}: pool will grow"
        control = RemoteControl(app, timeout=2.0)
        try:
            wait_until("a pool of 2", lambda: control.pool_size(alpha) == 2)
            shrunk = console(env, "control", "pool", alpha, "-1")  # a negative DELTA is no option
            assert (shrunk.returncode, shrunk.stdout.strip()) == (0, f"{alpha}: pool will shrink")
            wait_until("a pool of 1", lambda: control.pool_size(alpha) == 1)
            # Start and stop consuming a queue: confirmed by the worker, visible in its queues.
            extra = f"extra-{unique}"
            added = console(env, "control", "consume", bravo, extra)
            assert added.returncode == 0 and "add consumer" in added.stdout, added
            wait_until(
                "bravo consumes the extra queue", lambda: extra in watch.workers()[bravo]["queues"]
            )
            cancelled = console(env, "control", "cancel", bravo, extra)
            assert cancelled.returncode == 0 and "no longer consuming" in cancelled.stdout
            # Revoke with terminate of a task running on the other host.
            task = app.send_task("cluster_test.sleep", args=(60,))
            wait_until(
                "the task runs",
                lambda: any(t["uuid"] == task.id for t in watch.latest.get("active_tasks", [])),
            )
            revoked = console(env, "control", "revoke", task.id, "--terminate")
            assert revoked.returncode == 0, revoked.stderr
            assert revoked.stdout.startswith(f"terminated {task.id[:8]}")
            assert "confirmed by" in revoked.stdout
            wait_until(
                "the task gone from the active list",
                lambda: all(t["uuid"] != task.id for t in watch.latest.get("active_tasks", [])),
            )
            # Pool restarts are off on these workers: the worker's refusal, exit 1.
            refused = console(env, "control", "pool-restart", alpha)
            assert refused.returncode == 1
            assert "Pool restarts not enabled" in refused.stderr
            # A node nobody answers to: one line, exit 1.
            missing = console(env, "control", "pool", f"ghost@nowhere-{unique}", "1")
            assert missing.returncode == 1
            assert missing.stderr.strip().endswith("within 1 s")
        finally:
            control.close()
        # Warm shutdown: the worker exits and watch shows it offline.
        stopped = console(env, "control", "shutdown", bravo)
        assert stopped.returncode == 0 and "warm shutdown sent" in stopped.stdout
        procs[1].wait(timeout=30)
        wait_until("bravo shown offline", lambda: watch.workers()[bravo]["online"] is False)
        assert watch.workers()[alpha]["online"] is True
    finally:
        code = watch.close()
    assert code == 0
