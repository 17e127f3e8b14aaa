"""Watch mode on screen, fed frozen data: no supervisor keys, hosts folded, filter, remote keys."""

from __future__ import annotations

import pytest
from textual.css.query import NoMatches
from textual.pilot import Pilot
from textual.widgets import DataTable, Log
from textual.widgets._footer import FooterKey

from console.snapshot import DashboardData
from console.ui.app import ConsoleApp
from console.ui.demo import DemoSource, watch_data
from console.ui.modals import ConfirmScreen, QueueScreen
from console.ui.screens import HelpScreen, LogScreen
from console.ui.statusbar import StatusBar
from console.ui.tables import ProcessTable
from console.ui.watchmode import SUPERVISOR_ACTIONS, needs_supervisor
from console.ui.workers import HOST_KEY, WorkerTable
from tests.waiting import no_work_in, until

SUPERVISOR_KEYS = ("r", "s", "plus", "minus", "R", "c", "d", "l", "t")
"""The default keys of restart, start/stop, scale, rolling restart, cron, detach, logs, time."""


class ClusterSource(DemoSource):
    """The watch demo with ``hosts`` hosts of ``per_host`` workers each."""

    def __init__(self, hosts: int = 3, per_host: int = 2) -> None:
        super().__init__("watch")
        self.hosts = tuple(f"host-{i:02d}" for i in range(hosts)) if hosts != 3 else None
        self.per_host = per_host

    def poll(self) -> DashboardData:
        """The frozen cluster."""
        if self.hosts is None:
            return watch_data(per_host=self.per_host)
        return watch_data(self.hosts, self.per_host)


async def settled(app: ConsoleApp, pilot: Pilot[None]) -> None:
    await until(pilot, lambda: app.last_data is not None, "first poll")
    await pilot.pause()


def footer_words(app: ConsoleApp) -> list[str]:
    return [str(k.description) for k in app.screen.query(FooterKey) if k.display]


def said(app: ConsoleApp) -> list[str]:
    return [str(n.message) for n in app._notifications]


async def test_watch_mode_has_no_processes_no_log_and_no_supervisor_keys() -> None:
    source = ClusterSource()
    app = ConsoleApp(source, live=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await settled(app, pilot)
        with pytest.raises(NoMatches):
            app.query_one(ProcessTable)
        with pytest.raises(NoMatches):
            app.query_one(Log)
        assert isinstance(app.focused, WorkerTable)
        bar = str(app.query_one(StatusBar).render())
        assert "watch" in bar and "redis://10.0.4.12:6379/0" in bar and "procs" not in bar
        words = footer_words(app)
        assert {"pool+", "pool-", "pool restart", "consume", "shutdown", "quit"} <= set(words)
        assert not {"restart", "stop/start", "rolling", "scale", "logs", "detach"} & set(words)
        for action in SUPERVISOR_ACTIONS:
            assert app.check_action(action, ()) is False, action
        # Help after them: once it shows, the keys before it were handled, and any action
        # they had started is awaited before looking at what the engine was asked.
        await pilot.press(*SUPERVISOR_KEYS, "question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), "help")
        await until(pilot, no_work_in(app, "action"), "every action finished")
        assert source.actions == []
        assert not any(isinstance(s, LogScreen) for s in app.screen_stack)
        assert not any("stopping" in m for m in said(app))
        assert not any(needs_supervisor(c.action) for c in app.palette_commands())
        assert any(c.action == "app.shutdown_worker" for c in app.palette_commands())
        table: DataTable[str] = app.screen.query_one(DataTable)
        rows = [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]
        where = {row[0] for row in rows}
        what = {row[2] for row in rows}
        assert "processes" not in where and "logs" not in where
        assert not {"Restart the process", "Rolling restart", "Leave everything running"} & what
        assert "Warm shutdown of the worker: its tasks finish, then it exits" in what
        assert "Quit (the workers are not touched)" in what


async def test_q_leaves_at_once_though_tasks_run() -> None:
    source = ClusterSource()
    app = ConsoleApp(source, live=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await settled(app, pilot)
        assert app.last_data is not None and app.last_data.active_tasks  # tasks are running
        await pilot.press("q")
        await until(pilot, lambda: "shutdown" in source.actions, "the runtime stopped")
    assert source.actions == ["shutdown"]  # no question, nothing else asked of the engine


async def test_hosts_group_their_workers_with_counts_and_fold() -> None:
    app = ConsoleApp(ClusterSource(), live=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await settled(app, pilot)
        table = app.query_one(WorkerTable)
        hosts = ["alpha", "bravo", "charlie"]
        assert table.row_keys() == [
            key for h in hosts for key in (HOST_KEY + h, f"worker-1@{h}", f"worker-2@{h}")
        ]
        assert "6 on 3 hosts" in str(table.border_title)
        status = {h: str(table.get_cell(HOST_KEY + h, "status")) for h in hosts}
        assert status == {"alpha": "2/2 online", "bravo": "2/2 online", "charlie": "1/2 online"}
        data = app.last_data
        assert data is not None
        for h in hosts:
            mine = [w for w in data.workers if w.hostname.endswith("@" + h)]
            assert table.get_cell(HOST_KEY + h, "active") == str(sum(w.active for w in mine))
            assert table.get_cell(HOST_KEY + h, "done") == str(sum(w.processed for w in mine))
        assert str(table.get_cell("worker-1@alpha", "worker")).strip() == "worker-1"

        await pilot.press("down", "down", "down", "space")  # on bravo's row: fold it
        assert table.row_keys()[3:5] == [HOST_KEY + "bravo", HOST_KEY + "charlie"]
        assert str(table.get_cell(HOST_KEY + "bravo", "worker")).startswith("▸")
        await pilot.press("enter")  # enter opens it again
        assert "worker-2@bravo" in table.row_keys()
        await pilot.press("down", "space")  # on a worker: its host folds, the cursor on it
        assert table.selected_key() == HOST_KEY + "bravo"
        assert "worker-1@bravo" not in table.row_keys()
        await pilot.press("e")  # some host open: fold them all
        assert table.row_keys() == [HOST_KEY + h for h in hosts]
        await pilot.press("e")  # all folded: open them all
        assert table.row_count == 9


async def test_filter_keeps_host_name_or_queue_matches_and_escape_clears() -> None:
    app = ConsoleApp(ClusterSource(), live=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await settled(app, pilot)
        table = app.query_one(WorkerTable)
        await pilot.press("slash", *"bravo")
        assert table.row_keys() == [HOST_KEY + "bravo", "worker-1@bravo", "worker-2@bravo"]
        assert "/bravo: 2 of 6" in str(table.border_title)
        await pilot.press("enter")  # keeps the filter, back to the table
        assert app.focused is table and table.filter_text == "bravo"
        await pilot.press("slash", *["backspace"] * 5, *"cleanup")  # a queue of every worker-2
        workers = [k for k in table.row_keys() if not k.startswith(HOST_KEY)]
        assert workers == ["worker-2@alpha", "worker-2@bravo", "worker-2@charlie"]
        await pilot.press(*["backspace"] * 7, *"1@char")  # a node name
        assert table.row_keys() == [HOST_KEY + "charlie", "worker-1@charlie"]
        await pilot.press("escape")
        assert table.row_count == 9 and table.filter_text == ""
        assert str(table.border_title) == "workers · 6 on 3 hosts"


async def test_fifty_hosts_of_eight_stay_usable_at_80x24() -> None:
    app = ConsoleApp(ClusterSource(hosts=50, per_host=8), live=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settled(app, pilot)
        table = app.query_one(WorkerTable)
        assert table.row_count == 50, "fifty hosts: folded, one row each"
        visible = table.scrollable_content_region.height - 1  # less the header
        assert visible >= 8, f"only {visible} rows of workers at 80x24"

        def cursor_shown() -> bool:
            top = round(table.scroll_offset.y)
            return top <= table.cursor_row < top + visible

        await pilot.press("end")
        await pilot.pause()
        assert table.selected_key() == HOST_KEY + "host-49" and cursor_shown()
        await pilot.press("up", "up", "space")  # open host-47
        await pilot.pause()
        assert table.selected_key() == HOST_KEY + "host-47" and cursor_shown()
        assert table.row_count == 58
        await pilot.press("down", "down", "down")
        await pilot.pause()
        assert table.selected_key() == "worker-3@host-47" and cursor_shown()
        await pilot.press("slash", *"host-07", "enter")
        assert table.row_count == 9, "one host matches: shown open"
        keys = [k for k in app.screen.query(FooterKey) if k.display]
        assert all(k.region.right <= 80 for k in keys), [(k.description, k.region) for k in keys]


async def test_remote_keys_confirm_and_show_the_reply() -> None:
    source = ClusterSource()
    app = ConsoleApp(source, live=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await settled(app, pilot)
        await pilot.press("greater_than_sign")  # on the host row
        await pilot.pause()
        assert source.actions == [] and any("no worker selected" in m for m in said(app))
        await pilot.press("down", "greater_than_sign", "less_than_sign", "P")
        await until(pilot, lambda: len(source.actions) == 3, "three remote actions")
        assert set(source.actions) == {
            "pool +1 worker-1@alpha",
            "pool -1 worker-1@alpha",
            "pool restart worker-1@alpha",
        }
        await until(pilot, lambda: "pool restart worker-1@alpha" in said(app), "the reply shown")

        await pilot.press("u")
        await until(pilot, lambda: isinstance(app.screen, QueueScreen), "the queue dialog")
        assert isinstance(app.screen, QueueScreen)
        assert "default" in app.screen.choices  # not consumed by worker-1 yet
        assert "events.process_event" not in app.screen.choices
        await pilot.press(*"default", "enter")
        await until(pilot, lambda: "consume default worker-1@alpha" in said(app), "consume")
        await pilot.press("U")
        await until(pilot, lambda: isinstance(app.screen, QueueScreen), "the queue dialog")
        assert isinstance(app.screen, QueueScreen)
        assert app.screen.choices == ["events.process_event", "events.save_event"]
        await pilot.press("escape")
        await pilot.pause()
        assert not any(a.startswith("cancel") for a in source.actions)

        await pilot.press("S")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
        assert isinstance(app.screen, ConfirmScreen)
        assert "worker-1@alpha" in app.screen.question
        await pilot.press("n")
        await pilot.pause()
        assert not any(a.startswith("shutdown") for a in source.actions)
        await pilot.press("S")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
        await pilot.press("y")
        await until(pilot, lambda: "shutdown worker-1@alpha" in said(app), "the shutdown")


async def test_supervising_console_shuts_down_remote_workers_only() -> None:
    source = DemoSource("main")
    app = ConsoleApp(source, live=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await settled(app, pilot)
        await pilot.press("tab", "tab", "tab")
        assert isinstance(app.focused, WorkerTable)
        assert "shutdown" not in footer_words(app), "remote keys: in ? and the palette only"
        await pilot.press("down", "S")  # worker-1@ops-1 runs under this console
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)
        assert any("runs under this console" in m for m in said(app))
        table = app.query_one(WorkerTable)
        assert table.row_keys()[-1] == HOST_KEY + "ops-2", "another console's host: folded"
        await pilot.press("end", "space", "end", "S", "y")  # batch@ops-2 is remote
        await until(pilot, lambda: "shutdown batch@ops-2" in source.actions, "remote shutdown")
