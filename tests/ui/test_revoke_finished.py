"""Revoking a finished task says so; the task detail offers x / X only while it can be revoked."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from celery import Celery

from console.actions import Outcome
from console.runtime import ConsoleRuntime
from console.settings import Settings, WorkerGroup
from console.ui.app import ConsoleApp
from console.ui.demo import DemoSource, demo_data
from console.ui.modals import ConfirmScreen
from console.ui.screens import TaskDetailScreen
from tests.supervision_support.fakes import make_supervisor
from tests.ui.test_keys import settled, until

UNREACHABLE = "redis://127.0.0.1:1/0"  # nothing listens: a broadcast would fail, not succeed


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[ConsoleRuntime]:
    settings = Settings(
        broker=None, broker_source="test", state_dir=tmp_path, worker_groups=(WorkerGroup(),)
    ).with_broker(UNREACHABLE, "test")
    sup, _clock, _spawner = make_supervisor()
    yield ConsoleRuntime(settings, Celery("revoke", broker=UNREACHABLE), sup)
    sup.shutdown(timeout=1)


def test_revoking_a_finished_task_says_it_has_finished(runtime: ConsoleRuntime) -> None:
    now = time.time()
    runtime.monitor.state.apply_many(
        [
            {"type": "task-received", "uuid": "bd866824-aaaa", "hostname": "w@h", "timestamp": now},
            {"type": "task-succeeded", "uuid": "bd866824-aaaa", "hostname": "w@h", "result": "1"},
        ]
    )
    result = runtime.revoke("bd866824-aaaa")
    assert result.outcome is Outcome.REFUSED
    assert result.message == "task bd866824 has already finished (success)"
    assert runtime.revoke("bd866824-aaaa", terminate=True).outcome is Outcome.REFUSED


def detail_keys(app: ConsoleApp) -> set[str]:
    return {b.binding.action for b in app.screen.active_bindings.values()}


async def test_task_detail_offers_revoke_only_while_the_task_can_be_revoked() -> None:
    source = DemoSource("main")
    app = ConsoleApp(source, live=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await settled(app, pilot)
        running = demo_data("main").active_tasks[0]
        app.push_screen(TaskDetailScreen(running, app.confirm_revoke))
        await pilot.pause()
        assert "revoke(False)" in detail_keys(app)
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "confirm dialog")
        await pilot.press("n")
        app.pop_screen()
        finished = replace(running, state="SUCCESS", finished=running.started, result="3")
        app.push_screen(TaskDetailScreen(finished, app.confirm_revoke))
        await pilot.pause()
        assert "revoke(False)" not in detail_keys(app) and "revoke(True)" not in detail_keys(app)
        await pilot.press("x", "X")
        await pilot.pause()
        assert isinstance(app.screen, TaskDetailScreen)
