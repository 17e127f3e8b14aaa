"""Load the supervised Celery app by its import path, and read what the console needs from it."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from celery import Celery


class AppLoadError(RuntimeError):
    """The Celery app named by --app could not be loaded (one clear line)."""


def load_app(path: str, broker_url: str) -> Celery:
    """Import the Celery app at ``path`` (``pkg.module`` or ``pkg.module:attr``) on ``broker_url``.

    The URL is also put in ``SENTRY_BROKER_URL`` first, so apps that read it at import agree.
    """
    from celery import Celery  # the engine: imported by what loads an app, not by a client
    from celery.utils.imports import symbol_by_name

    os.environ["SENTRY_BROKER_URL"] = broker_url
    try:
        obj = symbol_by_name(path)
    except (ImportError, AttributeError, ValueError) as exc:
        raise AppLoadError(f"cannot import Celery app {path!r}: {exc}") from None
    except SyntaxError as exc:  # file and line only: the message never holds a secret
        where = f"{os.path.basename(exc.filename or '?')} line {exc.lineno}"
        raise AppLoadError(f"cannot import Celery app {path!r}: {exc.msg} ({where})") from None
    except Exception as exc:  # errors raised by the app module's own code
        raise AppLoadError(f"cannot import Celery app {path!r}: {type(exc).__name__}") from None
    if not isinstance(obj, Celery):
        candidate = getattr(obj, "app", None) or getattr(obj, "celery", None)
        if not isinstance(candidate, Celery):
            raise AppLoadError(f"{path!r} is not a Celery app")
        obj = candidate
    obj.conf.broker_url = broker_url
    return obj


def app_queue_names(app: Celery) -> list[str]:
    """Names of the queues the app declares, the default queue included."""
    names: list[str] = []
    for queue in app.conf.task_queues or ():
        name = getattr(queue, "name", None) or str(queue)
        if name not in names:
            names.append(name)
    default = app.conf.task_default_queue or "celery"
    if default not in names:
        names.append(default)
    return names


def transport_options(app: Celery) -> dict[str, Any]:
    """The app's broker transport options (priority steps, separator, key prefix)."""
    return dict(app.conf.broker_transport_options or {})


def ingest_task(app: Celery) -> str:
    """Name of the task that receives synthetic events (``console_ingest_task`` in app conf)."""
    name = app.conf.get("console_ingest_task")
    if not name:
        raise AppLoadError("the Celery app does not name a console_ingest_task to send events to")
    return str(name)
