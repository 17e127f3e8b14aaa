"""Two real TUIs attached to one server through Pilot: shared state, detach, quit, read-only."""

from __future__ import annotations

from pathlib import Path

from console.server.client import RemoteSource
from console.server.server import SupervisorServer
from console.ui.app import ConsoleApp
from console.ui.statusbar import StatusBar
from console.ui.tables import ProcessTable
from tests.server_support import client_of, inprocess_server
from tests.waiting import no_work_in, until


def attached_app(server: SupervisorServer, *, read_only: bool = False) -> ConsoleApp:
    client = client_of(server, read_only=read_only)
    source = RemoteSource(client, server.settings, read_only=read_only)
    return ConsoleApp(source)


def rows(app: ConsoleApp) -> set[str]:
    return {str(k) for k in app.query_one(ProcessTable).row_keys()}


async def test_two_tuis_share_one_server_and_d_only_detaches(
    redis_url: str, state_dir: Path
) -> None:
    with inprocess_server(redis_url, state_dir, processes=1) as server:
        first, second = attached_app(server), attached_app(server)
        async with first.run_test(size=(150, 30)) as one, second.run_test(size=(150, 30)) as two:
            await until(one, lambda: rows(first) == {"worker-1"}, "first sees worker-1")
            await until(two, lambda: rows(second) == {"worker-1"}, "second sees worker-1")
            bar = str(first.query_one(StatusBar).render())
            assert "attached: server" in bar, bar
            await one.press("plus")
            await until(two, lambda: rows(second) == {"worker-1", "worker-2"}, "+ seen by both")
            await until(one, lambda: rows(first) == {"worker-1", "worker-2"}, "+ seen here")
            await one.press("d")
            await until(one, lambda: first.detached and not first.is_running, "detached")
            assert not server.stopping.is_set(), "d must leave the programs running"
            await two.press("minus")
            await until(two, lambda: rows(second) == {"worker-1"}, "the other goes on")
            await two.press("q")
            await until(two, lambda: server.stopped.is_set(), "q stops the server", timeout=30)
        assert not second.detached


async def test_read_only_tui_hides_and_refuses_actions(redis_url: str, state_dir: Path) -> None:
    with inprocess_server(redis_url, state_dir, processes=1) as server:
        app = attached_app(server, read_only=True)
        async with app.run_test(size=(150, 30)) as pilot:
            await until(pilot, lambda: rows(app) == {"worker-1"}, "worker-1")
            # active_bindings keeps only what check_action allows: what the footer shows.
            visible = {b.binding.action for b in app.screen.active_bindings.values()}
            assert "app.restart" not in visible and "app.scale(1)" not in visible
            assert {"app.quit_console", "app.detach", "app.logs"} <= visible
            await pilot.press("plus", "r", "t")  # t (timestamps) shows the two were handled
            await until(pilot, lambda: app.stamps, "t handled after + and r")
            await until(pilot, no_work_in(app, "action"), "every action finished")
            assert server.runtime.jobs.recent() == [], "nothing was asked of the server"
            assert server.runtime.group_size("worker") == 1
            await pilot.press("d")
            await until(pilot, lambda: app.detached, "detached")
        assert not server.stopping.is_set()


async def test_an_attached_tui_shows_a_running_job_with_its_progress_then_its_result(
    redis_url: str, state_dir: Path
) -> None:
    import threading

    from console.actions import ActionResult

    with inprocess_server(redis_url, state_dir, processes=1) as server:
        jobs = server.runtime.jobs
        step, release = threading.Event(), threading.Event()

        def roll() -> ActionResult:  # a long action reporting progress, as a rolling restart
            jobs.progress("worker: 1/3 replaced, now worker-2")
            step.wait(30)
            jobs.progress("worker: 2/3 replaced, now worker-3")
            release.wait(30)
            return ActionResult.done("worker: rolling restart done")

        app = attached_app(server)
        async with app.run_test(size=(150, 30)) as pilot:
            await until(pilot, lambda: rows(app) == {"worker-1"}, "worker-1")
            job = jobs.submit("rolling restart worker", roll, who="test")

            def bar() -> str:
                return str(app.query_one(StatusBar).render())

            await until(pilot, lambda: "1/3 replaced" in bar(), "the job's progress")
            assert f"job {job.id} rolling restart worker" in bar()
            step.set()
            await until(pilot, lambda: "2/3 replaced" in bar(), "the next step")
            release.set()
            await until(pilot, lambda: f"job {job.id} done: worker: rolling" in bar(), "result")
            await pilot.press("d")


async def test_q_then_now_during_a_warm_stop_escalates_at_once(
    redis_url: str, state_dir: Path
) -> None:
    import signal
    import time

    from tests.supervision_support.fakes import Behaviour

    with inprocess_server(redis_url, state_dir, processes=1) as server:
        spawner = server.runtime.supervisor._spawner
        spawner.behaviours["worker-2"] = Behaviour(ignore=frozenset({signal.SIGTERM}))  # type: ignore[attr-defined]
        app = attached_app(server)
        async with app.run_test(size=(150, 30)) as pilot:
            await until(pilot, lambda: rows(app) == {"worker-1"}, "worker-1")
            await pilot.press("plus")
            await until(pilot, lambda: rows(app) == {"worker-1", "worker-2"}, "worker-2")
            await pilot.press("q")  # no task runs: a warm stop at once, which worker-2 ignores
            await until(pilot, lambda: server.stopping.is_set(), "the warm stop under way")
            bar = str(app.query_one(StatusBar).render())
            assert "q: stop now" in bar, bar
            began = time.monotonic()
            await pilot.press("q")
            await pilot.press("n")
            await until(pilot, lambda: server.stopped.is_set(), "stopped", timeout=15)
            assert time.monotonic() - began < 10, "the hard stop waited for the warm one"
