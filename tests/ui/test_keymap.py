"""CONSOLE_KEYMAP: remapped keys act, help shows the keys in force, bad keymaps stop start-up."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from textual.widgets import DataTable

from console.settings import SettingsError, resolve_settings
from console.ui.app import ConsoleApp
from console.ui.demo import DemoSource
from console.ui.keymap import KeymapError, check_keymap
from console.ui.screens import HelpScreen
from tests.waiting import no_work_in, until

ROOT = Path(__file__).resolve().parents[2]


def demo_with(keymap: dict[str, str]) -> DemoSource:
    """The demo source with ``keymap`` in its settings."""
    source = DemoSource("main")
    source.settings = replace(source.settings, keymap=tuple(keymap.items()))
    return source


async def test_remapped_keys_act_and_the_old_ones_do_not() -> None:
    source = demo_with({"restart": "ctrl+r", "rolling": "f5", "scale_up": "a"})
    app = ConsoleApp(source, live=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.last_data is not None, "first poll")
        # The old keys first, then the new ones: once the new ones' actions are done, anything
        # the old ones had started would be done too (keys are handled in order).
        await pilot.press("r", "R", "plus", "ctrl+r", "f5", "a")
        await until(pilot, lambda: len(source.actions) >= 3, "three remapped actions")
        await until(pilot, no_work_in(app, "action"), "every action finished")
        assert sorted(source.actions) == [
            "restarting worker-1",
            "rolling restart",
            "worker: scaling +1",
        ]


async def test_help_lists_the_keys_in_force() -> None:
    app = ConsoleApp(demo_with({"restart": "ctrl+r", "help": "f1"}), live=False)
    async with app.run_test(size=(100, 40)) as pilot:
        await until(pilot, lambda: app.last_data is not None, "first poll")
        await pilot.press("question_mark", "t")  # t (timestamps on) shows "?" was handled
        await until(pilot, lambda: app.stamps, "t handled after ?")
        assert not any(isinstance(s, HelpScreen) for s in app.screen_stack)  # "?" is not help
        await pilot.press("f1")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), "help on f1")
        table: DataTable[str] = app.screen.query_one(DataTable)
        rows = [table.get_row_at(i) for i in range(table.row_count)]
        keys = {str(row[2]): str(row[1]) for row in rows}
        assert keys["Restart the process"] == "^r"
        assert keys["Every key"] == "f1"
        assert keys["Rolling restart"] == "R"  # untouched bindings keep their default


def test_unknown_id_and_clashes_are_one_line() -> None:
    with pytest.raises(KeymapError) as info:
        check_keymap({"restrat": "ctrl+r"})
    assert "unknown binding id 'restrat'" in str(info.value) and "restart" in str(info.value)
    # "R" is the main screen's rolling restart, active while the process table has focus.
    with pytest.raises(KeymapError) as info:
        check_keymap({"restart": "R"})
    assert str(info.value) == (
        "SENTRY_CONF: CONSOLE_KEYMAP: R would be both 'rolling' and 'restart'"
        " in the processes table"
    )
    with pytest.raises(KeymapError, match="question_mark would be both"):
        check_keymap({"quit": "?"})
    # A main-screen key is also live while the task table has focus, where "x" is revoke.
    with pytest.raises(KeymapError, match="x would be both 'cron' and 'revoke'"):
        check_keymap({"cron": "x"})
    # Swapping two keys is no clash.
    assert check_keymap({"restart": "s", "toggle": "r", "cron": "C"}) == {
        "restart": "s",
        "toggle": "r",
        "cron": "C",
    }


def test_keymap_setting_must_be_a_dict_of_strings(tmp_path: Path) -> None:
    conf = tmp_path / "sentry.conf.py"
    conf.write_text('CONSOLE_KEYMAP = {"restart": "ctrl+r"}\n')
    settings = resolve_settings(env={"SENTRY_CONF": str(conf)})
    assert settings.keymap == (("restart", "ctrl+r"),)
    for bad in ('["restart"]', '{"restart": 5}', '{"restart": ""}'):
        conf.write_text(f"CONSOLE_KEYMAP = {bad}\n")
        with pytest.raises(SettingsError, match="CONSOLE_KEYMAP"):
            resolve_settings(env={"SENTRY_CONF": str(conf)})


@pytest.mark.parametrize(
    ("keymap", "expected"),
    [
        ('{"restrat": "ctrl+r"}', "error: SENTRY_CONF: CONSOLE_KEYMAP: unknown binding id"),
        ('{"restart": "R"}', "error: SENTRY_CONF: CONSOLE_KEYMAP: R would be both"),
    ],
)
def test_bad_keymap_stops_the_console_at_start_up(
    keymap: str, expected: str, tmp_path: Path
) -> None:
    conf = tmp_path / "sentry.conf.py"
    conf.write_text(f"CONSOLE_KEYMAP = {keymap}\n")
    state = tmp_path / "state"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENTRY_")}
    env.update(SENTRY_CONF=str(conf), SENTRY_CONSOLE_STATE_DIR=str(state))
    result = subprocess.run(
        [sys.executable, "-c", "from console.cli import main; main()"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(expected), result.stderr
    assert not (state / "broker").exists()  # refused before the embedded broker started
