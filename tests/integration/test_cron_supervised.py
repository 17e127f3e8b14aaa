"""Two consoles (two state directories, one broker), each supervising a cron: one leads, the
other stands by, the table data and `status` show it, and stopping the leader hands over."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from console.programs import CRON
from console.runtime import ConsoleRuntime, read_status
from console.settings import Settings, WorkerGroup

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def cron_role(runtime: ConsoleRuntime) -> str | None:
    """The role the runtime's poll shows for its cron program."""
    return next((p.role for p in runtime.poll().processes if p.name == CRON), None)


@pytest.fixture
def consoles(
    redis_url: str, tmp_path: Path, unique: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[list[ConsoleRuntime]]:
    """Two runtimes with a cron and no worker, shut down at the end."""
    monkeypatch.setenv("SENTRY_QUEUE_SUFFIX", f"-{unique}")
    monkeypatch.setenv("SENTRY_BROKER_URL", redis_url)
    from workers.app import make_app

    app = make_app(os.environ)
    made = []
    try:
        for name in ("host-a", "host-b"):
            state = tmp_path / name
            state.mkdir(mode=0o700)
            settings = Settings(
                broker=None,
                broker_source="test",
                state_dir=state,
                worker_groups=(WorkerGroup(processes=0),),
            ).with_broker(redis_url, "test")
            runtime = ConsoleRuntime(settings, app)
            made.append(runtime)
            runtime.start()
        yield made
    finally:
        for runtime in made:
            runtime.shutdown()


def test_one_leader_shown_and_handed_over_on_stop(consoles: list[ConsoleRuntime]) -> None:
    deadline = time.monotonic() + 60
    while sorted(str(cron_role(r)) for r in consoles) != ["leader", "standby"]:
        assert time.monotonic() < deadline, [cron_role(r) for r in consoles]
        time.sleep(0.2)
    leader, standby = sorted(consoles, key=lambda r: cron_role(r) != "leader")
    status = read_status(leader.settings.state_dir)
    assert status is not None
    assert {p["name"]: p["role"] for p in status["processes"]}[CRON] == "leader"

    stopped_at = time.monotonic()
    leader.stop(CRON)
    while cron_role(standby) != "leader":
        assert time.monotonic() - stopped_at < 15, "the standby never took over"
        time.sleep(0.1)
    assert time.monotonic() - stopped_at < 5.0


@pytest.mark.parametrize(
    ("coordination", "scheduler"),
    [(True, "console.cron.scheduler.CoordinatedScheduler"), (False, "celery.beat.Persistent")],
)
def test_the_setting_turns_coordination_off(
    redis_url: str, tmp_path: Path, coordination: bool, scheduler: str
) -> None:
    import subprocess

    from console.programs import console_command

    conf = tmp_path / "sentry.conf.py"
    conf.write_text(f"CONSOLE_CRON_COORDINATION = {coordination}\n")
    log = tmp_path / "cron.log"
    env = {**os.environ, "SENTRY_CONF": str(conf), "SENTRY_CONSOLE_STATE_DIR": str(tmp_path)}
    env["SENTRY_BROKER_URL"] = redis_url
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*console_command(), "run", "cron"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 60
        while "beat: Starting" not in log.read_text(errors="replace"):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        assert f"scheduler -> {scheduler}" in log.read_text()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
