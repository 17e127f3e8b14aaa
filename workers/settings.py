"""Worker settings, read from the environment only (the console passes them to its children)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/0"
DEFAULT_VISIBILITY_TIMEOUT = 300
DEFAULT_RETENTION_DAYS = 30.0
REDIS_SCHEMES = frozenset({"redis", "rediss"})
AMQP_SCHEMES = frozenset({"amqp", "amqps", "pyamqp"})


class SettingsError(ValueError):
    """An environment variable holds a value the workers cannot use."""


def default_event_store_path(env: Mapping[str, str]) -> Path:
    """`$XDG_STATE_HOME/sentry-console/events.sqlite3`, else under `~/.local/state`."""
    state_home = env.get("XDG_STATE_HOME", "")
    # The XDG spec says relative values must be ignored.
    if not state_home or not os.path.isabs(state_home):
        home = env.get("HOME") or str(Path.home())
        state_home = os.path.join(home, ".local", "state")
    return Path(state_home) / "sentry-console" / "events.sqlite3"


def broker_kind(url: str) -> str:
    """Classify a broker URL as "redis", "amqp" or "other" by scheme (redis+socket is redis)."""
    scheme = urlsplit(url).scheme.lower().partition("+")[0]
    if scheme in REDIS_SCHEMES:
        return "redis"
    if scheme in AMQP_SCHEMES:
        return "amqp"
    return "other"


def _positive_number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None
    if not value > 0 or value == float("inf"):
        raise SettingsError(f"{name} must be a positive number, got {raw!r}")
    return value


@dataclass(frozen=True)
class WorkerSettings:
    """Everything the workers read from their environment, resolved once."""

    broker_url: str = DEFAULT_BROKER_URL
    """Celery broker URL (`SENTRY_BROKER_URL`): redis, rediss, redis+socket, amqp or pyamqp."""
    queue_suffix: str = ""
    """Appended to every queue name (`SENTRY_QUEUE_SUFFIX`), so tests and stacks can isolate."""
    visibility_timeout: int = DEFAULT_VISIBILITY_TIMEOUT
    """Seconds before Redis redelivers an unacknowledged task (`SENTRY_VISIBILITY_TIMEOUT`)."""
    event_store_path: Path = Path("events.sqlite3")
    """SQLite file holding saved events (`SENTRY_EVENT_STORE`)."""
    retention_days: float = DEFAULT_RETENTION_DAYS
    """Events received longer ago than this are deleted (`SENTRY_EVENT_RETENTION_DAYS`)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> WorkerSettings:
        """Build settings from an environment mapping; raise SettingsError on a bad value."""
        store = env.get("SENTRY_EVENT_STORE", "").strip()
        return cls(
            broker_url=env.get("SENTRY_BROKER_URL", "").strip() or DEFAULT_BROKER_URL,
            queue_suffix=env.get("SENTRY_QUEUE_SUFFIX", ""),
            visibility_timeout=int(
                _positive_number(env, "SENTRY_VISIBILITY_TIMEOUT", DEFAULT_VISIBILITY_TIMEOUT)
            ),
            event_store_path=Path(store).expanduser() if store else default_event_store_path(env),
            retention_days=_positive_number(
                env, "SENTRY_EVENT_RETENTION_DAYS", DEFAULT_RETENTION_DAYS
            ),
        )
