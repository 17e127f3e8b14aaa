"""``--reload`` settings from SENTRY_CONF and the flag, and which programs a reload restarts."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.actions import ActionResult
from console.reload import describe_change, restart_programs
from console.settings import Settings, SettingsError, resolve_settings
from console.supervision.model import ProcessState
from tests.supervision_support.fakes import Behaviour, drive, make_supervisor, program


def settings_from(tmp_path: Path, body: str, *, reload: bool = False) -> Settings:
    conf = tmp_path / "sentry.conf.py"
    conf.write_text(body)
    env = {"SENTRY_CONF": str(conf), "SENTRY_CONSOLE_STATE_DIR": str(tmp_path)}
    return resolve_settings(env=env, reload=reload)


def test_reload_is_off_by_default_and_the_flag_turns_it_on(tmp_path: Path) -> None:
    off = settings_from(tmp_path, "")
    assert (off.reload, off.reload_paths, off.reload_patterns) == (False, (), ("*.py",))
    assert settings_from(tmp_path, "", reload=True).reload is True


def test_reload_settings_from_the_conf_file(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    s = settings_from(
        tmp_path,
        "CONSOLE_RELOAD = True\n"
        "CONSOLE_RELOAD_PATHS = ['lib', '/']\n"
        "CONSOLE_RELOAD_PATTERNS = ['*.py', '*.html']\n",
    )
    assert s.reload is True
    assert s.reload_paths == (tmp_path / "lib", Path("/"))
    assert s.reload_patterns == ("*.py", "*.html")


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("CONSOLE_RELOAD = 'yes'", "CONSOLE_RELOAD must be True or False"),
        ("CONSOLE_RELOAD_PATHS = 'lib'", "CONSOLE_RELOAD_PATHS must be a list of paths"),
        ("CONSOLE_RELOAD_PATHS = [1]", "CONSOLE_RELOAD_PATHS must be a list of paths"),
        ("CONSOLE_RELOAD_PATTERNS = []", "CONSOLE_RELOAD_PATTERNS must be a non-empty list"),
        ("CONSOLE_RELOAD_PATTERNS = '*.py'", "CONSOLE_RELOAD_PATTERNS must be a non-empty list"),
        (
            "CONSOLE_RELOAD = True\nCONSOLE_RELOAD_PATHS = ['missing']",
            "CONSOLE_RELOAD_PATHS: ",
        ),
    ],
)
def test_bad_reload_settings_are_one_clear_line(tmp_path: Path, body: str, fragment: str) -> None:
    with pytest.raises(SettingsError, match=r"^SENTRY_CONF: ") as info:
        settings_from(tmp_path, body + "\n")
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_a_missing_extra_path_only_matters_when_reload_is_on(tmp_path: Path) -> None:
    assert settings_from(tmp_path, "CONSOLE_RELOAD_PATHS = ['missing']\n").reload is False
    with pytest.raises(SettingsError, match="missing does not exist"):
        settings_from(tmp_path, "CONSOLE_RELOAD_PATHS = ['missing']\n", reload=True)


def test_describe_change() -> None:
    assert describe_change([Path("a/tasks.py")]) == "tasks.py changed"
    assert describe_change([Path("a.py"), Path("b.py"), Path("c.py")]) == "a.py and 2 more changed"


def test_a_reload_restarts_every_program_but_the_stopped_ones() -> None:
    sup, clock, spawner = make_supervisor()
    sup.add_program(program("worker-1", group="worker", startsecs=1.0))
    sup.add_program(program("cron", group="cron", startsecs=1.0))
    sup.add_program(program("broken", group="broken", startsecs=1.0, startretries=0))
    sup.add_program(program("parked", group="parked", startsecs=1.0))
    spawner.behaviours["broken"] = Behaviour(exit_after=0.1, exit_status=1)
    sup.stop("parked")
    drive(
        sup,
        clock,
        lambda: (
            {s.state for s in sup.snapshot()}
            <= {ProcessState.RUNNING, ProcessState.FATAL, ProcessState.STOPPED}
            and len(spawner.spawned) >= 3
        ),
    )
    states = {s.name: s.state for s in sup.snapshot()}
    assert states["broken"] is ProcessState.FATAL and states["parked"] is ProcessState.STOPPED
    spawner.behaviours["broken"] = Behaviour()  # the fix
    rolled: list[str] = []

    assert restart_programs(sup, rolled.append) == []
    drive(
        sup,
        clock,
        lambda: all(s.state is ProcessState.RUNNING for s in sup.snapshot() if s.name != "parked"),
    )
    assert rolled == []
    assert [len(spawner.times(n)) for n in ("worker-1", "cron", "broken", "parked")] == [2, 2, 2, 0]


def test_a_group_of_several_rolls_and_a_failed_roll_is_reported() -> None:
    sup, clock, _ = make_supervisor()
    for n in (1, 2):
        sup.add_program(program(f"worker-{n}", group="worker", startsecs=1.0))
    sup.add_program(program("cron", group="cron", startsecs=1.0))
    drive(sup, clock, lambda: all(s.state is ProcessState.RUNNING for s in sup.snapshot()))
    rolled: list[str] = []

    def roll(group: str) -> ActionResult:
        # What the runtime's rolling restart does: it returns a failed result, never raises.
        rolled.append(group)
        return ActionResult.failed(f"{group}: rolling restart stopped: worker-1 failed to start")

    problems = restart_programs(sup, roll)
    assert rolled == ["worker"]
    assert problems == ["worker: rolling restart stopped: worker-1 failed to start"]
    assert {s.name: s.state for s in sup.snapshot()}["cron"] is ProcessState.STOPPING
