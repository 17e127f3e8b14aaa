"""Turn settings into the program definitions the supervisor runs (workers and cron)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from console.settings import Settings, WorkerGroup
from console.supervision import ProgramConfig

CRON = "cron"


def console_command() -> list[str]:
    """How to invoke this console as a child: the installed script, else ``python -m console``."""
    script = Path(sys.executable).with_name("sentry-console")
    if script.exists():
        return [str(script)]
    found = shutil.which("sentry-console")
    return [found] if found else [sys.executable, "-m", "console"]


def child_env(settings: Settings) -> dict[str, str]:
    """Environment every child gets: the resolved broker URL and the state directory."""
    assert settings.broker is not None, "the broker must be resolved before children start"
    env = {
        "SENTRY_BROKER_URL": settings.broker.raw,
        "SENTRY_CONSOLE_STATE_DIR": str(settings.state_dir),
        "PYTHONUNBUFFERED": "1",
    }
    if not os.environ.get("SENTRY_EVENT_STORE"):
        env["SENTRY_EVENT_STORE"] = str(settings.state_dir / "events.sqlite3")
    return env


def worker_program(settings: Settings, group: WorkerGroup, n: int) -> ProgramConfig:
    """Process number ``n`` (1-based) of a worker group."""
    command = [*console_command(), "--app", settings.app, "run", "worker"]
    command += ["-n", group.node_name(n), "-c", str(group.concurrency), "-l", group.loglevel]
    if group.queues:
        command += ["-Q", ",".join(group.queues)]
    if group.exclude_queues:
        command += ["-X", ",".join(group.exclude_queues)]
    if group.max_tasks_per_child:
        command += ["--max-tasks-per-child", str(group.max_tasks_per_child)]
    return ProgramConfig(
        name=f"{group.name}-{n}",
        command=command,
        group=group.name,
        env=child_env(settings),
        log_lines=settings.log_lines,
    )


def cron_program(settings: Settings) -> ProgramConfig:
    """The single cron (beat) process."""
    command = [*console_command(), "--app", settings.app, "run", "cron", "-l", "INFO"]
    return ProgramConfig(
        name=CRON,
        command=command,
        group=CRON,
        env=child_env(settings),
        log_lines=settings.log_lines,
    )
