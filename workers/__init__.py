"""The Celery application supervised by default: a Sentry-style event pipeline and cron."""

from __future__ import annotations

import importlib
from types import ModuleType


def __getattr__(name: str) -> ModuleType:
    """Import `workers.app` on first access, so `symbol_by_name("workers.app")` finds it.

    Kept lazy so that importing `workers.events` or `workers.store` configures no Celery app.
    """
    if name == "app":
        return importlib.import_module("workers.app")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
