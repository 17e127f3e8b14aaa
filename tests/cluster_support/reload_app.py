"""A throwaway Celery app package for the ``--reload`` tests and benchmark.

``write_package`` writes ``reloadapp_<suffix>/`` (``app.py`` with one task, ``tasks.py`` with the
body that task runs) under a directory the caller puts on ``PYTHONPATH``; editing ``tasks.py``
changes what the task returns once the workers have reloaded.
"""

from __future__ import annotations

from pathlib import Path

TASK = "reload_test.value"

APP = """\
import os

from celery import Celery

from . import tasks

SUFFIX = {suffix!r}
app = Celery("reload-" + SUFFIX, broker=os.environ["SENTRY_BROKER_URL"],
             backend=os.environ["SENTRY_BROKER_URL"], set_as_current=False)
app.conf.update(
    task_default_queue="reload-" + SUFFIX,
    control_exchange="ctl-" + SUFFIX,
    event_exchange="ev-" + SUFFIX,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)


@app.task(name={task!r})
def value():
    return tasks.value()
"""


def tasks_source(body: str) -> str:
    """The app's tasks module with ``value()`` returning the expression ``body``."""
    return f"def value():\n    return {body}\n"


def save(path: Path, text: str) -> None:
    """Write a file the way many editors save: a new file renamed over the old one."""
    tmp = path.with_name(f".{path.name}.saving")
    tmp.write_text(text)
    tmp.replace(path)


def write_package(root: Path, suffix: str, body: str = '"first"') -> Path:
    """Write the package under ``root``; its directory (the app is ``<name>.app:app``)."""
    package = root / f"reloadapp_{suffix}"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "app.py").write_text(APP.format(suffix=suffix, task=TASK))
    (package / "tasks.py").write_text(tasks_source(body))
    return package
