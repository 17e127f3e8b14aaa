"""The control plane of a real ``serve`` with real Celery workers, driven by ``ctl``: concurrent
actions as jobs whose results match the final state, and stops that escalate."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.chaos_support.helpers import descendants, wait_gone
from tests.integration.test_server_process import ROOT, serve
from tests.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def test_two_restarts_and_a_scale_at_once_end_as_their_jobs_say(
    redis_url: str, state_dir: Path, unique: str
) -> None:
    with serve(redis_url, state_dir, unique, workers=1) as served:
        served.wait_running({"worker-1"})
        commands = [("restart", "worker"), ("restart", "worker"), ("scale", "worker", "2")]
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "console", "ctl", *args],
                env=served.env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=ROOT,
            )
            for args in commands
        ]
        outs = [p.communicate(timeout=240) for p in procs]
        for proc, (out, err), args in zip(procs, outs, commands, strict=True):
            assert proc.returncode == 0, (args, out, err)
        assert "scaling to 2" in outs[2][0] or "already at 2" in outs[2][0], outs
        both = {"worker-1", "worker-2"}
        served.wait_running(both, timeout=120)  # the replaced ~old processes gone too
        status = json.loads(served.ctl("status", "--json").stdout)
        jobs = [j for j in status["jobs"] if j["action"].startswith(("restart", "scale"))]
        assert len(jobs) == 3 and all(j["state"] == "done" for j in jobs), jobs
        # Each restart job names the programs it replaced; their restart counts agree.
        replaced: dict[str, int] = {}
        for job in jobs:
            if job["action"] == "restart worker":
                for name in both:
                    replaced[name] = replaced.get(name, 0) + (f"{name} replaced" in job["message"])
        counts = {p["name"]: p["restarts"] for p in status["processes"]}
        assert counts == {name: replaced.get(name, 0) for name in both}, (counts, jobs)
        assert sum(1 for p in status["processes"] if p["group"] == "worker") == 2


def test_a_second_sigterm_turns_the_warm_stop_into_a_hard_one(
    redis_url: str, state_dir: Path, unique: str
) -> None:
    with serve(redis_url, state_dir, unique, workers=1) as served:
        served.wait_running({"worker-1"})
        found = descendants(served.proc.pid)
        worker = served.states()["worker-1"][1]
        assert worker is not None
        # Hold the worker's warm stop (30 s by default): a stopped process takes no SIGTERM,
        # as a worker deep in a long task would not finish soon.
        os.kill(worker, signal.SIGSTOP)
        served.proc.send_signal(signal.SIGTERM)
        wait_until("stopping", lambda: "stopping every program (warm)" in served.log.read_text())
        began = time.monotonic()
        served.proc.send_signal(signal.SIGTERM)
        assert served.proc.wait(60) == 0
        assert time.monotonic() - began < 10, "the second SIGTERM waited for the warm stop"
        assert wait_gone(found, 5.0) == []
