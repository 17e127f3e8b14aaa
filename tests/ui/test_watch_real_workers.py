"""Watch mode against real Celery workers on two "hosts" (node names), driven through Pilot.

Each key goes through the real runtime's remote control to a real worker; the worker's reply
must show on screen and the worker must really have changed (``inspect stats``, active queues,
offline after a warm shutdown). An attached TUI's source reaches the same actions through the
supervisor server.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from textual.pilot import Pilot

from console.actions import Outcome
from console.cluster import RemoteControl
from console.runtime import ConsoleRuntime
from console.server.client import RemoteSource
from console.settings import Settings
from console.ui.app import ConsoleApp
from console.ui.modals import ConfirmScreen, QueueScreen
from console.ui.workers import WorkerTable
from tests.cluster_support.app import make_app
from tests.server_support import client_of, inprocess_server

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Cluster:
    """Two real workers, each on a host of its own name, and the app that reaches them."""

    unique: str
    nodes: tuple[str, str]
    procs: tuple[subprocess.Popen[bytes], ...]


@pytest.fixture
def two_hosts(redis_url: str, unique: str, tmp_path: Path) -> Iterator[Cluster]:
    """``w1@alpha-…`` (prefork, one process) and ``w2@bravo-…``; killed by group afterwards."""
    env = dict(os.environ, SC_TEST_BROKER_URL=redis_url, SC_TEST_SUFFIX=unique)
    nodes = (f"w1-{unique}@alpha-{unique}", f"w2-{unique}@bravo-{unique}")
    procs = []
    try:
        for node in nodes:
            cmd = [sys.executable, "-m", "celery", "-A", "tests.cluster_support.app", "worker",
                   "-n", node, "-P", "prefork", "-c", "1", "-l", "INFO",
                   "--without-mingle", "--without-gossip"]  # fmt: skip
            with open(tmp_path / f"{node.split('@')[0]}.log", "wb") as log:
                procs.append(
                    subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
                )  # fmt: skip
        yield Cluster(unique, nodes, tuple(procs))
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


async def until(pilot: Pilot[None], ok: Callable[[], bool], what: str, timeout: float) -> None:
    """Wait for a condition with a deadline, letting the app run."""
    deadline = time.monotonic() + timeout
    while not ok():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await pilot.pause(0.05)


def said(app: ConsoleApp) -> list[tuple[str, str]]:
    """Every notification so far: (message, severity)."""
    return [(str(n.message), n.severity) for n in app._notifications]


def replied(app: ConsoleApp, text: str, severity: str = "information") -> Callable[[], bool]:
    return lambda: any(text in m and s == severity for m, s in said(app))


def active_queues(control: RemoteControl, node: str) -> set[str]:
    reply = control.inspect("active_queues", [node]).get(node) or []
    return {q["name"] for q in reply}


@pytest.mark.slow
async def test_watch_mode_controls_real_workers(
    two_hosts: Cluster, redis_url: str, tmp_path: Path
) -> None:
    unique = two_hosts.unique
    w1, w2 = two_hosts.nodes
    celery_app = make_app(redis_url, unique)
    settings = Settings(
        broker=None, broker_source="test", state_dir=tmp_path / "state", refresh_interval=0.3
    ).with_broker(redis_url, "test")
    settings = settings.watching()
    settings.state_dir.mkdir(parents=True, mode=0o700)
    runtime = ConsoleRuntime(settings, celery_app)
    control = RemoteControl(celery_app, timeout=2.0)
    runtime.start()
    app = ConsoleApp(runtime)
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            table = app.query_one(WorkerTable)
            await until(pilot, lambda: {w1, w2} <= set(table.row_keys()), "both workers", 60)
            assert table.grouped and table.row_keys()[0] == f"host alpha-{unique}"
            await pilot.press("home", "down")  # from alpha's host row to w1
            assert table.selected_worker() == w1

            await pilot.press("greater_than_sign")
            await until(pilot, replied(app, f"{w1}: pool will grow"), "the grow reply", 15)
            deadline = time.monotonic() + 15
            while control.pool_size(w1) != 2:  # inspect stats: the pool has really grown
                assert time.monotonic() < deadline, "the pool did not grow to 2"
                await pilot.pause(0.2)
            # The pool column follows within seconds, not at the next detail round (30 s).
            await until(pilot, lambda: str(table.get_cell(w1, "pool")) == "2", "pool column", 8)

            await pilot.press("P")  # not enabled on these workers: the worker's refusal shows
            await until(pilot, replied(app, "Pool restarts not enabled", "warning"), "refusal", 15)

            extra = f"extra-{unique}"
            await pilot.press("u")
            await until(pilot, lambda: isinstance(app.screen, QueueScreen), "queue dialog", 5)
            await pilot.press(*extra, "enter")
            await until(pilot, replied(app, f"{w1}: add consumer {extra}"), "add reply", 15)
            assert extra in active_queues(control, w1)
            await until(pilot, lambda: extra in str(table.get_cell(w1, "queues")), "queues", 8)
            await pilot.press("U")
            await until(pilot, lambda: isinstance(app.screen, QueueScreen), "queue dialog", 5)
            await pilot.press(*extra, "enter")
            await until(pilot, replied(app, f"no longer consuming from {extra}"), "cancel", 15)
            assert extra not in active_queues(control, w1)

            await pilot.press("S")
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "confirmation", 5)
            await pilot.press("y")
            await until(pilot, replied(app, f"{w1}: warm shutdown sent"), "shutdown sent", 15)

            def w1_offline() -> bool:
                keys = table.row_keys()
                return w1 not in keys or str(table.get_cell(w1, "status")) == "offline"

            await until(pilot, w1_offline, "w1 shown offline", 30)
            assert two_hosts.procs[0].wait(timeout=30) == 0, "a warm shutdown exits cleanly"
            assert str(table.get_cell(f"host alpha-{unique}", "status")) == "0/1 online"
            assert str(table.get_cell(w2, "status")) == "online"
            await pilot.press("q")
            await until(pilot, lambda: not app.is_running, "quit", 15)
    finally:
        control.close()
        runtime.shutdown()


def test_attached_source_reaches_the_new_actions(redis_url: str, state_dir: Path) -> None:
    """Through the server: a worker that does not exist is "no reply", never "unknown action"."""
    with inprocess_server(redis_url, state_dir) as server:
        source = RemoteSource(client_of(server), server.settings, read_only=False)
        try:
            for result in (
                source.pool_restart("nobody@nowhere"),
                source.consume("nobody@nowhere", "q", on=True),
                source.consume("nobody@nowhere", "q", on=False),
            ):
                assert result.outcome is Outcome.FAILED and "no reply" in result.message, result
            sent = source.shutdown_worker("nobody@nowhere")  # a shutdown gets no reply
            assert sent.ok and "warm shutdown sent" in sent.message
        finally:
            source.detach()
        read_only = RemoteSource(client_of(server, read_only=True), server.settings, read_only=True)
        try:
            refused = read_only.shutdown_worker("nobody@nowhere")
            assert refused.outcome is Outcome.REFUSED and "read-only" in refused.message
        finally:
            read_only.detach()
