"""Every action a job: a client that stops waiting cancels nothing and is told the truth, a
retried request with the same key acts once, and ``ctl`` says what it knows with its exit code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from console.actions import ActionResult
from console.server.protocol import EXIT_PENDING
from console.server.server import SupervisorServer
from tests.server_support import client_of, inprocess_server
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def server(redis_url: str, state_dir: Path) -> Iterator[SupervisorServer]:
    with inprocess_server(redis_url, state_dir, processes=1) as running:
        yield running


@pytest.fixture
def blocker(server: SupervisorServer) -> Iterator[threading.Event]:
    """A long action holding the queue (as a start-first handover may, for up to 120 s)."""
    release = threading.Event()

    def hold() -> ActionResult:
        release.wait(60)
        return ActionResult.done("held")

    server.runtime.jobs.submit("hold", hold, who="test")
    wait_until("the hold to run", lambda: server.runtime.jobs.active()[0].state == "running", 10)
    yield release
    release.set()


def ctl(server: SupervisorServer, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, SENTRY_CONSOLE_STATE_DIR=str(server.settings.state_dir))
    return subprocess.run(
        [sys.executable, "-m", "console", "ctl", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def test_a_client_that_stops_waiting_is_told_and_its_job_runs_once(
    server: SupervisorServer, blocker: threading.Event
) -> None:
    client = client_of(server)
    job = client.act("scale", {"delta": 1}, wait=0.5, key="retry-1")
    assert job.state == "queued" and job.result is None, job
    again = client.act("scale", {"delta": 1}, wait=0.5, key="retry-1")  # a retry
    assert again.id == job.id
    assert server.runtime.group_size("worker") == 1, "nothing ran while the hold runs"
    client.close()  # the asker leaves: its job is not cancelled
    blocker.set()
    done = server.runtime.jobs.wait(job.id, 20)
    assert done is not None and done.state == "done", done
    assert server.runtime.group_size("worker") == 2, "the retried request acted twice"
    other = client_of(server)
    assert other.job(job.id).message == "worker: scaling to 2"
    retried = other.act("scale", {"delta": 1}, wait=5, key="retry-1")
    assert retried.id == job.id and server.runtime.group_size("worker") == 2
    other.close()


def test_ctl_says_still_running_with_its_own_exit_code_then_reads_the_result(
    server: SupervisorServer, blocker: threading.Event
) -> None:
    out = ctl(server, "--timeout", "0.5", "--key", "k-ctl", "scale", "worker", "3")
    assert out.returncode == EXIT_PENDING, out
    assert "still running as job" in out.stderr and "ctl job" in out.stderr
    job_id = int(out.stderr.split("still running as job ")[1].split()[0])
    queued = ctl(server, "job", str(job_id))
    assert queued.returncode == EXIT_PENDING and "queued" in queued.stdout, queued
    no_wait = ctl(server, "--no-wait", "--key", "k-ctl", "scale", "worker", "3")
    assert no_wait.returncode == 0 and f"job {job_id} queued" in no_wait.stdout, no_wait
    blocker.set()
    done = ctl(server, "job", str(job_id), "--wait", "20", "--json")
    assert done.returncode == 0, done
    assert json.loads(done.stdout)["state"] == "done"
    assert server.runtime.group_size("worker") == 3
    listed = ctl(server, "status", "--json")
    assert listed.returncode == 0
    jobs = json.loads(listed.stdout)["jobs"]
    assert [j["action"] for j in jobs[:2]] == ["scale worker to 3", "hold"]


def test_a_refused_action_is_a_job_too_and_ctl_exits_1(server: SupervisorServer) -> None:
    out = ctl(server, "scale", "nogroup", "2")
    assert out.returncode == 1 and "no worker group named 'nogroup'" in out.stderr, out
    job = server.runtime.jobs.recent(1)[0]
    assert job.state == "refused" and job.action == "scale_to"


def test_ctl_status_exits_2_with_a_fatal_program_and_shows_days(
    server: SupervisorServer,
) -> None:
    healthy = ctl(server, "status")
    assert healthy.returncode == 0, healthy
    sup = server.runtime.supervisor
    with sup._lock:
        runner = sup._programs["worker-1"]
        runner.state = type(runner.state).FATAL
    out = ctl(server, "status", "--json")
    assert out.returncode == 2, out
    assert json.loads(out.stdout)["processes"][0]["state"] == "FATAL"
    assert ctl(server, "status").returncode == 2


def test_uptime_past_a_day_keeps_its_days() -> None:
    from console.cli_server import duration

    assert duration(3 * 86400 + 4 * 3600 + 5 * 60 + 6) == "3d 04:05:06"
    assert duration(59) == "00:00:59"


def test_the_screen_sees_running_jobs_and_their_results(
    server: SupervisorServer, blocker: threading.Event
) -> None:
    from console.server.client import RemoteSource

    source = RemoteSource(client_of(server), server.settings, read_only=False)
    wait_until("the hold on screen", lambda: any(j.action == "hold" for j in source.poll().jobs))
    result = server.runtime.jobs.submit("scale", lambda: server.runtime.scale(1), who="test")
    wait_until("queued on screen", lambda: any(j.id == result.id for j in source.poll().jobs))
    blocker.set()

    def finished() -> bool:
        shown = {j.id: j for j in source.poll().jobs}
        return result.id in shown and shown[result.id].state == "done"

    wait_until("the result on screen", finished, 10)
    source.detach()


def test_shutdown_now_during_a_warm_stop_escalates(server: SupervisorServer) -> None:
    import signal
    import time

    from tests.supervision_support.fakes import Behaviour

    spawner = server.runtime.supervisor._spawner
    spawner.behaviours["worker-2"] = Behaviour(ignore=frozenset({signal.SIGTERM}))  # type: ignore[attr-defined]
    first = client_of(server)
    assert first.act("scale", {"delta": 1}, wait=10).state == "done"
    warm: list[dict[str, object]] = []
    stopping = threading.Thread(target=lambda: warm.append(first.request("shutdown", timeout=60)))
    stopping.start()
    wait_until("the warm stop under way", server.stopping.is_set, 10)
    began = time.monotonic()
    second = client_of(server)
    reply = second.request("shutdown", timeout=30, now=True)
    assert reply["result"]["outcome"] == "done"
    stopping.join(30)
    assert warm and time.monotonic() - began < 10, "--now waited for the warm stop"
    later = server.runtime.jobs.submit("scale", lambda: ActionResult.done("no"), who="test")
    assert later.state == "refused" and "stopping" in later.message
