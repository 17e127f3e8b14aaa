"""Turn settings into the program definitions the supervisor runs (workers and cron)."""

from __future__ import annotations

import os
import shutil
import sys
import threading
from pathlib import Path
from typing import Any

from celery.utils.nodenames import default_nodename, host_format

from console.settings import Settings, WorkerGroup
from console.supervision import ProgramConfig

CRON = "cron"
#: How long a fresh worker or cron must stay up to count as started. Python, Celery and the app
#: take one to three seconds to import on a busy host, so a broken app fails well inside this
#: window and ends FATAL after ``startretries`` instead of restarting forever.
CELERY_STARTSECS = 5.0
#: Seconds a finished pool child waits for its worker to read its result before exiting.
POOL_RESULT_WAIT = 5.0


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


def celery_node_name(value: str) -> str:
    """A worker's ``-n`` value expanded as ``celery worker`` does it (``%h``, ``%n``, ``%d``)."""
    # The worker command expands the value, then WorkController applies default_nodename once
    # more: "%n-1@%d" on a host without a domain becomes "vm-1@" and then "vm-1@vm".
    return default_nodename(host_format(default_nodename(value)))


def alternate_node_name(node: str) -> str:
    """The second node name of a worker slot, used by every other replacement (``a-1-b@%h``).

    A replacement starts while the process it replaces still runs, and Celery node names must
    stay unique: the slot swaps between two names, so no more than two ever exist per slot.
    """
    name, at, host = node.partition("@")
    return f"{name}-b{at}{host}"


def program_log(settings: Settings, name: str) -> dict[str, Any]:
    """The log file options of program ``name``: ``state_dir/logs/NAME.log``, or none when off."""
    if settings.program_log_bytes <= 0:
        return {}
    return {
        "logfile": settings.state_dir / "logs" / f"{name}.log",
        "logfile_maxbytes": settings.program_log_bytes,
        "logfile_backups": settings.program_log_backups,
    }


def worker_program(
    settings: Settings, group: WorkerGroup, n: int, *, alternate: bool = False
) -> ProgramConfig:
    """Process number ``n`` (1-based) of a worker group (on its alternate node name if asked)."""
    node = group.node_name(n)
    node = alternate_node_name(node) if alternate else node
    command = [*console_command(), "--app", settings.app, "run", "worker"]
    command += ["-n", node, "-c", str(group.concurrency), "-l", group.loglevel]
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
        startsecs=CELERY_STARTSECS,
        # The stop signal goes to the main process alone: its warm shutdown lets the pool finish
        # the tasks in flight, whereas a pool child that got SIGTERM itself would die at once.
        # A stop that times out still SIGKILLs the whole group.
        stopasgroup=False,
        killasgroup=True,
        log_lines=settings.log_lines,
        **program_log(settings, f"{group.name}-{n}"),
    )


def cron_program(settings: Settings) -> ProgramConfig:
    """The single cron (beat) process."""
    command = [*console_command(), "--app", settings.app, "run", "cron", "-l", "INFO"]
    return ProgramConfig(
        name=CRON,
        command=command,
        group=CRON,
        env=child_env(settings),
        startsecs=CELERY_STARTSECS,
        log_lines=settings.log_lines,
        **program_log(settings, CRON),
    )


def warm_shutdown_on_hangup() -> None:
    """Make the worker this process runs next shut down warm, quickly, on SIGTERM and SIGHUP.

    Celery re-executes a worker whose output is not a terminal on SIGHUP. Under the console, or
    when the SSH session of a foreground worker drops, the operator means "stop": the worker
    should finish its tasks in flight and exit, as on SIGTERM.

    A pool child that finishes a task while its parent is already joining the pool waits for the
    parent to read the result, which it never does then: billiard gives up only after 30 s, the
    console's whole stop timeout. Five seconds is plenty for a parent that still reads; a result
    left unread only means its message is not acked and runs again (tasks are acked late).
    Call this before ``worker_main``.
    """
    import billiard.pool
    from celery import signals
    from celery.apps.worker import install_worker_term_handler

    limit = int(POOL_RESULT_WAIT / billiard.pool.GUARANTEE_MESSAGE_CONSUMPTION_RETRY_INTERVAL)
    billiard.pool.GUARANTEE_MESSAGE_CONSUMPTION_RETRY_LIMIT = limit

    def on_ready(sender: object, **kwargs: object) -> None:
        worker = getattr(sender, "controller", None)
        if worker is not None and threading.current_thread() is threading.main_thread():
            install_worker_term_handler(worker, sig="SIGHUP")

    signals.worker_ready.connect(on_ready, weak=False)
