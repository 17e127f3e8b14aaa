"""Cron slot arithmetic, the coordination settings and the role file."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from celery.schedules import crontab, schedule

from console.cron.lease import LeaseTiming
from console.cron.role import prune_roles, read_role, role_path, with_cron_role, write_role
from console.cron.slots import RECORD_TTL_FLOOR, due_slot, latest_slot, next_check, record_ttl
from console.settings import SettingsError, resolve_settings
from console.supervision import ProcessSnapshot, ProcessState

EVERY_10 = schedule(10.0)


def test_interval_slots_sit_on_the_epoch_grid() -> None:
    assert latest_slot(EVERY_10, 1000.0) == 1000.0
    assert latest_slot(EVERY_10, 1009.99) == 1000.0
    assert latest_slot(EVERY_10, 1010.0) == 1010.0


def test_a_slot_is_due_once() -> None:
    assert due_slot(EVERY_10, 1000.0, 1009.9) is None
    assert due_slot(EVERY_10, 1000.0, 1010.2) == 1010.0
    assert due_slot(EVERY_10, 1010.0, 1010.2) is None


def test_missed_slots_give_one_catch_up_for_the_latest() -> None:
    assert due_slot(EVERY_10, 1000.0, 1075.0) == 1070.0


def test_a_schedule_never_seen_starts_at_the_current_slot() -> None:
    assert due_slot(EVERY_10, None, 1075.0) == 1070.0


def test_crontab_asks_the_schedule() -> None:
    daily = crontab(minute=0, hour=4)
    now = time.time()
    assert due_slot(daily, now - 1, now) is None
    slot = due_slot(daily, now - 2 * 86400, now)
    assert slot is not None and slot > now - 2 * 86400


def test_next_check_waits_for_the_next_slot_at_most_longest() -> None:
    assert next_check(EVERY_10, 1003.0, 30.0) == pytest.approx(7.0)
    assert next_check(EVERY_10, 1003.0, 1.0) == 1.0
    assert next_check(crontab(minute=0), 1003.0, 1.0) == 1.0


def test_lease_timing_fits_the_takeover_target() -> None:
    timing = LeaseTiming(5.0)
    assert timing.ttl + timing.poll < 5.0
    assert timing.heartbeat == 2


def test_coordination_settings(tmp_path: Path) -> None:
    conf = tmp_path / "sentry.conf.py"
    conf.write_text("CONSOLE_CRON_COORDINATION = False\nCONSOLE_CRON_TAKEOVER = 2.5\n")
    settings = resolve_settings(env={"SENTRY_CONF": str(conf)})
    assert settings.cron_coordination is False
    assert settings.cron_takeover == 2.5
    default = resolve_settings(env={})
    assert default.cron_coordination is True
    assert default.cron_takeover == 5.0


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("CONSOLE_CRON_COORDINATION = 'yes'", "CONSOLE_CRON_COORDINATION must be True or False"),
        ("CONSOLE_CRON_TAKEOVER = 0", "CONSOLE_CRON_TAKEOVER must be a positive number"),
    ],
)
def test_bad_coordination_settings(tmp_path: Path, line: str, message: str) -> None:
    conf = tmp_path / "sentry.conf.py"
    conf.write_text(line + "\n")
    with pytest.raises(SettingsError, match=message):
        resolve_settings(env={"SENTRY_CONF": str(conf)})


def _snapshot(pid: int | None, group: str = "cron") -> ProcessSnapshot:
    return ProcessSnapshot(
        *("cron", group, ProcessState.RUNNING, pid, pid, 0.0, 1.0, 0, None, None, None, None),
        description="",
    )


def test_role_file_reaches_the_cron_snapshot(tmp_path: Path) -> None:
    pid = os.getpid()
    assert with_cron_role(_snapshot(pid), tmp_path, "cron").role is None
    write_role(tmp_path, pid, "standby", "leader is h:1")
    assert read_role(tmp_path, pid) is not None
    assert with_cron_role(_snapshot(pid), tmp_path, "cron").role == "standby"
    assert with_cron_role(_snapshot(pid, "worker"), tmp_path, "cron").role is None
    assert with_cron_role(_snapshot(pid + 1), tmp_path, "cron").role is None


def test_role_files_of_dead_processes_are_pruned(tmp_path: Path) -> None:
    write_role(tmp_path, os.getpid(), "leader")
    dead = 2**22 + 12345  # above the default pid_max: never a live process
    write_role(tmp_path, dead, "leader")
    prune_roles(tmp_path)
    assert role_path(tmp_path, os.getpid()).exists()
    assert not role_path(tmp_path, dead).exists()


def test_slot_records_outlive_many_periods_of_their_schedule() -> None:
    assert record_ttl(schedule(60)) == RECORD_TTL_FLOOR
    assert record_ttl(schedule(86_400)) == 100 * 86_400
    assert record_ttl(crontab(0, 0, day_of_month=1, month_of_year=1)) > 366 * 86_400
