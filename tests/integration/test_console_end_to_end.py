"""The whole path: the real app through Pilot, real worker and cron children, a real Redis."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
from textual.pilot import Pilot

from console.eventgen import send_events
from console.runtime import ConsoleRuntime, DashboardData
from console.settings import Settings, WorkerGroup
from console.supervision import ProcessState
from console.ui.app import ConsoleApp
from console.ui.tables import ProcessTable
from tests.chaos_support.helpers import store_count

pytestmark = pytest.mark.timeout(240)


def descendants() -> set[int]:
    """Pids of every live descendant of this test process."""
    return {p.pid for p in psutil.Process().children(recursive=True)}


@pytest.fixture
def no_leftovers() -> Iterator[None]:
    """Whatever happens, kill every descendant this test leaves behind (and fail if any)."""
    before = descendants()
    yield
    leftover = [psutil.Process(pid) for pid in descendants() - before if psutil.pid_exists(pid)]
    for proc in leftover:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    assert not leftover, f"processes left behind: {leftover}"


@pytest.fixture
def e2e_settings(
    redis_url: str, state_dir: Path, unique: str, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    monkeypatch.setenv("SENTRY_QUEUE_SUFFIX", f"-{unique}")
    monkeypatch.setenv("SENTRY_EVENT_STORE", str(state_dir / "events.sqlite3"))
    monkeypatch.setenv("SENTRY_BROKER_URL", redis_url)
    return Settings(
        broker=None,
        broker_source="test",
        state_dir=state_dir,
        worker_groups=(
            WorkerGroup(name="worker", processes=1, concurrency=2, hostname=f"w{unique}-{{n}}@%h"),
        ),
        refresh_interval=0.3,
    ).with_broker(redis_url, "test")


async def wait_for(
    pilot: Pilot[None], predicate: Callable[[], bool], timeout: float, what: str
) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await pilot.pause(0.1)


def states(app: ConsoleApp) -> dict[str, tuple[ProcessState, int | None]]:
    data: DashboardData | None = app.last_data
    return {p.name: (p.state, p.pid) for p in data.processes} if data else {}


async def test_console_runs_scales_restarts_and_quits_clean(
    e2e_settings: Settings, no_leftovers: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from workers.app import make_app

    app = make_app(os.environ)
    runtime = ConsoleRuntime(e2e_settings, app)
    runtime.start()
    console = ConsoleApp(runtime, live=True)
    store = e2e_settings.state_dir / "events.sqlite3"
    try:
        async with console.run_test(size=(100, 30)) as pilot:

            def running(*names: str) -> bool:
                s = states(console)
                return all(s.get(n, (None,))[0] == ProcessState.RUNNING for n in names)

            await wait_for(pilot, lambda: running("worker-1", "cron"), 60, "worker and cron")
            await wait_for(
                pilot,
                lambda: (
                    console.last_data is not None and console.last_data.broker.state == "connected"
                ),
                10,
                "broker connected",
            )

            send_events(app, "workers.process_event", 500)
            await wait_for(pilot, lambda: store_count(store) == 500, 120, "500 rows in the store")
            await wait_for(
                pilot,
                lambda: (
                    console.last_data is not None
                    and bool(console.last_data.queues)
                    and all((q.ready or 0) == 0 for q in console.last_data.queues)
                ),
                30,
                "queues drained",
            )

            await pilot.press("plus")
            await wait_for(pilot, lambda: running("worker-1", "worker-2"), 60, "two workers")

            table = console.query_one(ProcessTable)
            table.focus()
            table.move_cursor(table.row_keys().index("worker-1"))
            old_pid = states(console)["worker-1"][1]
            await pilot.press("r")
            await wait_for(
                pilot,
                lambda: (
                    running("worker-1") and states(console)["worker-1"][1] not in (None, old_pid)
                ),
                60,
                "worker-1 restarted with a new pid",
            )
            children = descendants()
            assert children, "the console should have child processes before quitting"
            await pilot.press("q")
            await wait_for(pilot, lambda: not console.is_running, 60, "the console to exit")
    finally:
        runtime.shutdown()
    deadline = time.monotonic() + 10
    while any(
        psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
        for p in children
    ):
        assert time.monotonic() < deadline, "children survived the quit"
        time.sleep(0.1)
    assert store_count(store) == 500
