"""Event modes against a real worker: ``workers`` gets heartbeats and no task events, ``all`` both.

The worker sends task events from the start (``-E``): the ``workers`` monitor must not receive
them because the broker filters by binding (Redis PSUBSCRIBE pattern, RabbitMQ topic binding),
not because the worker stays silent.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest

from console.cluster import ClusterMonitor, WorkerInfo
from tests.cluster_support.app import make_app
from tests.integration.test_cluster_monitor import broker_url, start_worker, worker
from tests.waiting import wait_until

__all__ = ["broker_url", "start_worker"]  # fixtures shared with test_cluster_monitor

QUICK_TASKS = 5


@pytest.mark.slow
def test_workers_mode_shows_heartbeats_and_receives_no_task_events(
    broker_url: str, unique: str, start_worker: Callable[[str, bool], subprocess.Popen[bytes]]
) -> None:
    app = make_app(broker_url, unique)
    monitors = {
        mode: ClusterMonitor(app, poll_interval=1.0, inspect_timeout=0.5, events=mode)
        for mode in ("all", "workers")
    }
    for monitor in monitors.values():
        monitor.start()
    try:
        wait_until(
            "both monitors listening",
            lambda: all(m.receiver.status == "listening" for m in monitors.values()),
        )
        start_worker("w1", True)
        prefix = f"w1-{unique}@"

        def beating(mode: str) -> WorkerInfo | None:
            shown = worker(monitors[mode].snapshot(), prefix)
            return shown if shown is not None and shown.online else None

        for mode in monitors:
            wait_until(f"the worker online in {mode} mode", partial(beating, mode), 60)

        for n in range(QUICK_TASKS):
            app.send_task("cluster_test.add", args=[n, 1])
        app.send_task("cluster_test.sleep", args=[30])

        everything = monitors["all"]
        wait_until(
            "the quick tasks done and the sleep running, from task events",
            lambda: everything.state.counts() == (QUICK_TASKS + 1, 1, QUICK_TASKS),
        )
        assert everything.snapshot().active_tasks[0].name == "cluster_test.sleep"
        assert everything.state.last_task_event is not None

        # Heartbeats (every 2 s) carry the counts: one running, the quick ones processed.
        lean = monitors["workers"]

        def counted() -> WorkerInfo | None:
            w = beating("workers")
            if w is not None and w.active == 1 and w.processed >= QUICK_TASKS + 1:
                return w
            return None

        shown = wait_until("heartbeat counts in workers mode", counted, 20)
        assert shown.last_heartbeat is not None
        snap = lean.snapshot()
        assert snap.events == "workers" and snap.active_tasks == []
        assert lean.state.counts() == (0, 0, 0), "a task event reached the workers-mode monitor"
        assert lean.state.last_task_event is None
        assert snap.events_received > 0  # the heartbeats it did receive
        assert everything.snapshot().events_received > snap.events_received
    finally:
        for monitor in monitors.values():
            monitor.stop()


def test_watch_json_reports_its_event_mode(redis_url: str, unique: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "SENTRY_CONF"}
    env |= {
        "SENTRY_BROKER_URL": redis_url,
        "SENTRY_CONSOLE_STATE_DIR": str(tmp_path / "state"),
        "SENTRY_QUEUE_SUFFIX": f"-{unique}",
    }
    argv = [sys.executable, "-m", "console", "watch", "--json", "--events", "workers"]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, start_new_session=True)
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 30
        cluster: dict[str, object] = {}
        for line in proc.stdout:  # a line a second
            cluster = json.loads(line)["cluster"]
            if cluster["state"] == "listening" or time.monotonic() > deadline:
                break
        assert cluster["state"] == "listening" and cluster["events"] == "workers"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    bad = subprocess.run([*argv[:-1], "tasks"], env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "'tasks' is not one of 'all', 'workers'" in bad.stderr
