"""Keys reach the engine: driven through Pilot against the demo source."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from textual.command import CommandList, CommandPalette
from textual.pilot import Pilot
from textual.widgets import DataTable

from console.ui.app import ConsoleApp
from console.ui.dashboard import binding_sections, palette_commands
from console.ui.demo import DemoSource
from console.ui.modals import ConfirmScreen, QuitScreen, TypeNameScreen
from console.ui.screens import HelpScreen, LogScreen, TaskDetailScreen
from console.ui.tables import ProcessTable, QueueTable, TaskTable
from console.ui.workers import WorkerTable
from tests.waiting import until


async def settled(app: ConsoleApp, pilot: Pilot[None]) -> None:
    await until(pilot, lambda: app.last_data is not None, "first poll")
    await pilot.pause()


def palette_offers(app: ConsoleApp, words: str) -> Callable[[], bool]:
    """A probe: the command palette is open and highlights a command whose text has ``words``
    (its search has answered what was typed, so enter runs that command)."""

    def probe() -> bool:
        screen = app.screen
        if not isinstance(screen, CommandPalette):
            return False
        commands = screen.query_one(CommandList)
        if commands.highlighted is None:
            return False
        prompt = commands.get_option_at_index(commands.highlighted).prompt
        return words.lower() in str(prompt).lower()

    return probe


async def test_tables_show_the_polled_data() -> None:
    app = ConsoleApp(DemoSource("main"), live=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await settled(app, pilot)
        processes = app.query_one(ProcessTable)
        assert processes.row_count == 3
        assert str(processes.get_cell("worker-1", "state")) == "RUNNING"
        assert app.query_one(QueueTable).get_cell("events.process_event", "depth") == "1204"
        workers = app.query_one(WorkerTable)
        assert str(workers.get_cell("worker-1@ops-1", "where")) == "local"
        # The hosts of other consoles' workers start folded: their row says where they run.
        assert "batch@ops-2" not in workers.row_keys()
        assert str(workers.get_cell("host ops-2", "where")) == "remote"


async def test_action_keys_call_the_engine() -> None:
    source = DemoSource("main")
    app = ConsoleApp(source, live=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await settled(app, pilot)
        await pilot.press("down", "r", "s", "plus", "minus", "R")
        await until(pilot, lambda: len(source.actions) >= 5, "five actions")
        assert "restarting worker-2" in source.actions
        assert "toggling worker-2" in source.actions
        scaled = {"worker: scaling +1", "worker: scaling -1", "rolling restart"}
        assert scaled <= set(source.actions)
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"cron on")
        await until(pilot, palette_offers(app, "cron"), "the palette offering cron")
        await pilot.press("enter")
        await until(pilot, lambda: "toggling cron" in source.actions, "cron from the palette")
        await pilot.press("tab", "tab", "tab")  # processes -> queues -> tasks -> workers
        assert isinstance(app.focused, WorkerTable)
        await pilot.press("greater_than_sign")  # on the host row ops-1: no worker selected
        await pilot.pause()
        assert not any(a.startswith("pool") for a in source.actions)
        await pilot.press("down", "greater_than_sign", "less_than_sign")
        await until(pilot, lambda: "pool -1 worker-1@ops-1" in source.actions, "pool keys")
        assert "pool +1 worker-1@ops-1" in source.actions


async def test_scale_outside_the_limits_shows_a_warning() -> None:
    source = DemoSource("main")
    source.settings = replace(source.settings, max_processes=2)
    app = ConsoleApp(source, live=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await settled(app, pilot)
        await pilot.press("plus")
        await pilot.pause()
        messages = [n.message for n in app._notifications]
        assert any("limit is 2" in m for m in messages), messages
        assert not any("scaling" in a for a in source.actions)


async def test_revoke_terminate_detail_and_purge_are_confirmed() -> None:
    source = DemoSource("main")
    app = ConsoleApp(source, live=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await settled(app, pilot)
        app.query_one(TaskTable).focus()
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "confirm")
        await pilot.press("n")
        await pilot.press("X")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "confirm")
        await pilot.press("y")
        await until(pilot, lambda: bool(source.actions), "terminate")
        assert source.actions == ["terminating 3f2a9c1e7b5d4e10"]
        await pilot.press("down", "down", "enter")
        await until(pilot, lambda: isinstance(app.screen, TaskDetailScreen), "task detail")
        shown = app.export_screenshot()
        assert "StoreBusy" in shown and "project_id" in shown
        await pilot.press("escape")
        app.query_one(QueueTable).focus()
        await pilot.press("down", "p")
        await until(pilot, lambda: isinstance(app.screen, TypeNameScreen), "purge dialog")
        await pilot.press(*"default", "enter")  # wrong name: still asking
        assert isinstance(app.screen, TypeNameScreen)
        await pilot.press(*"events.process_event", "enter")
        await until(pilot, lambda: "purged events.process_event" in source.actions, "purge")


async def test_sort_filter_help_and_logs() -> None:
    app = ConsoleApp(DemoSource("main"), live=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settled(app, pilot)
        queues = app.query_one(QueueTable)
        queues.focus()
        await pilot.press("o", "o", "O")  # by depth, descending
        assert queues.visible_rows()[0].key == "events.process_event"
        await pilot.press("slash", *"save", "enter")
        assert [r.key for r in queues.visible_rows()] == ["events.save_event"]
        assert app.focused is queues
        await pilot.press("slash", "escape")
        assert len(queues.visible_rows()) == 4
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), "help")
        listed = app.screen.query_one("#keys", DataTable).row_count
        assert listed == sum(len(b) for _, b in binding_sections())
        await pilot.press("escape", "l")
        await until(pilot, lambda: isinstance(app.screen, LogScreen), "logs")
        screen = app.screen
        assert isinstance(screen, LogScreen)
        await until(pilot, lambda: len(screen.lines) == 4, "log lines")
        await pilot.press("slash", *"ready", "enter")
        assert screen.matches == [2] and not screen.follow
        await pilot.press("f")
        assert screen.follow


async def test_every_main_action_is_in_the_palette() -> None:
    actions = {c.action for c in palette_commands()}
    for name in ("restart", "toggle_selected", "rolling_restart", "toggle_cron", "logs", "help"):
        assert f"app.{name}" in actions
    for name in ("revoke", "terminate", "purge", "pool(1)", "pool(-1)", "task_detail"):
        assert f"app.{name}" in actions
    assert {"screen.filter", "screen.sort"} <= actions


async def test_quit_asks_when_tasks_run_and_can_stop_now() -> None:
    source = DemoSource("main")
    app = ConsoleApp(source, live=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await settled(app, pilot)
        await pilot.press("q")
        await until(pilot, lambda: isinstance(app.screen, QuitScreen), "quit dialog")
        await pilot.press("escape")
        assert app.is_running and "shutdown" not in source.actions
        await pilot.press("q", "n")
        await until(pilot, lambda: "shutdown now" in source.actions, "stop now")


async def test_quit_without_tasks_is_immediate() -> None:
    source = DemoSource("broker-down")
    app = ConsoleApp(source, live=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await settled(app, pilot)
        await pilot.press("q")
        await until(pilot, lambda: source.actions[-1:] == ["shutdown"], "shutdown")
