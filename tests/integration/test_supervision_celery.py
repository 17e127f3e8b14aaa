"""The supervisor with real Celery workers: a broken app ends FATAL; signals shut down warm."""

from __future__ import annotations

import dataclasses
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from console.programs import worker_program
from console.settings import Settings, WorkerGroup
from console.supervision import ProcessSnapshot, ProcessState, ProgramConfig, Supervisor
from tests.chaos_support.helpers import ROOT, kill_groups
from tests.cluster_support.app import make_app
from tests.waiting import wait_until

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def supervisor() -> Iterator[Supervisor]:
    """A real supervisor; every group it started is SIGKILLed at the end."""
    sup = Supervisor(tick_interval=0.02)
    sup.run_in_background()
    try:
        yield sup
    finally:
        groups = [s.pgid for s in sup.snapshot() if s.pgid]
        sup.shutdown(timeout=10)
        kill_groups(groups)


def settings_for(redis_url: str, state_dir: Path, app: str, group: WorkerGroup) -> Settings:
    return Settings(
        broker=None,
        broker_source="test",
        app=app,
        state_dir=state_dir,
        worker_groups=(group,),
        cron=False,
    ).with_broker(redis_url, "test")


def only(sup: Supervisor) -> ProcessSnapshot:
    return sup.snapshot()[0]


def test_a_worker_whose_app_cannot_load_ends_fatal_after_backoff(
    supervisor: Supervisor, redis_url: str, state_dir: Path
) -> None:
    group = WorkerGroup(hostname="broken-{n}@%h")
    config = worker_program(
        settings_for(redis_url, state_dir, "nonexistent.module", group), group, 1
    )
    supervisor.add_program(config)
    waits: list[float] = []  # the countdown seen on entering each BACKOFF
    previous: ProcessState | None = None
    deadline = time.monotonic() + 90
    while (snap := only(supervisor)).state is not ProcessState.FATAL:
        assert time.monotonic() < deadline, f"not FATAL in time: {snap}"
        assert snap.state is not ProcessState.RUNNING, "a worker that cannot start ran"
        if snap.state is ProcessState.BACKOFF and previous is not ProcessState.BACKOFF:
            assert snap.backoff_remaining is not None
            waits.append(snap.backoff_remaining)
        previous = snap.state
        time.sleep(0.02)
    assert len(waits) == config.startretries == 3
    for expected, seen in zip((1.0, 2.0, 3.0), waits, strict=True):
        assert expected - 0.2 <= seen <= expected, waits
    assert snap.restarts == 3 and snap.pid is None
    assert snap.description.startswith("Exited too quickly")

    def errors() -> list[str]:
        return [line for line in supervisor.output(config.name) if line.startswith("error:")]

    wait_until("the last error line", lambda: len(errors()) >= 4, 5)
    assert len(errors()) == 4 and "cannot import Celery app 'nonexistent.module'" in errors()[0]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_run_worker_under_the_guard_shuts_down_warm_on_a_signal(
    supervisor: Supervisor,
    redis_url: str,
    state_dir: Path,
    unique: str,
    signum: int,
) -> None:
    group = WorkerGroup(concurrency=1, loglevel="INFO", hostname=f"warm{unique}-{{n}}@%h")
    settings = settings_for(redis_url, state_dir, "tests.cluster_support.app:app", group)
    config: ProgramConfig = worker_program(settings, group, 1)
    env = dict(config.env, PYTHONPATH=str(ROOT), SC_TEST_BROKER_URL=redis_url)
    env["SC_TEST_SUFFIX"] = unique
    supervisor.add_program(dataclasses.replace(config, env=env, autorestart=False))
    running = supervisor.wait_for(lambda s: s[0].state is ProcessState.RUNNING, 60)
    assert running, supervisor.output(config.name)[-20:]

    def logged(text: str) -> bool:
        return any(text in line for line in supervisor.output(config.name))

    wait_until("the worker to be ready", lambda: logged("ready."), 60)
    app = make_app(redis_url, unique)
    app.send_task("cluster_test.sleep", args=[2.0])
    wait_until("the task to start", lambda: logged("Task cluster_test.sleep["), 30)
    main = only(supervisor).pid
    assert main is not None
    os.kill(main, signum)
    assert supervisor.wait_for(lambda s: s[0].state is ProcessState.EXITED, 30)
    snap = only(supervisor)
    wait_until("the task's success line", lambda: logged("succeeded in"), 5)
    output = supervisor.output(config.name)
    assert snap.exitstatus == 0, output[-20:]
    assert any("succeeded in" in line for line in output), output[-20:]
    assert not any("WorkerLostError" in line for line in output), output[-20:]
    assert any("Warm shutdown" in line for line in output), output[-20:]
