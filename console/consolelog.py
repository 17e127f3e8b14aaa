"""The console's own log: a rotating file in the state directory, never the terminal.

Every part of the console logs through children of the ``sentry_console`` logger (supervision
writes ``sentry_console.supervision`` with the standard library alone). That logger never
propagates to the root logger, so nothing reaches the TUI's terminal unless a handler for it is
added on purpose (a headless server may add one for stderr).
"""

from __future__ import annotations

import contextvars
import functools
import getpass
import inspect
import logging
import os
from collections.abc import Callable
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import Any, TypeVar

from console.broker.urls import redact_url
from console.privatelog import PrivateRotatingFileHandler

LOGGER = "sentry_console"
LOG_FILE = "console.log"
#: One file of this size plus BACKUPS rotated ones: the log never takes more than ~4 MiB.
MAX_BYTES = 1 << 20
BACKUPS = 3
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

log = logging.getLogger(LOGGER)
log.propagate = False
log.addHandler(logging.NullHandler())  # without a handler, logging's last resort is stderr
audit_log = log.getChild("audit")

F = TypeVar("F", bound=Callable[..., Any])


class RedactingFormatter(logging.Formatter):
    """Formats records, then replaces any URL password (in messages and tracebacks) by ***."""

    def format(self, record: logging.LogRecord) -> str:
        """The formatted record, passwords redacted."""
        return redact_url(super().format(record))


def log_path(state_dir: Path) -> Path:
    """Where the console's log lives for ``state_dir``."""
    return state_dir / LOG_FILE


def setup_console_log(
    state_dir: Path, *, max_bytes: int = MAX_BYTES, backups: int = BACKUPS
) -> Path:
    """Send the console's log to a rotating file in ``state_dir``; return the file's path.

    Calling it again for the same file keeps the handler (the server sets the log up before
    its runtime does); for another file (another runtime in the same process) it replaces it.
    """
    path = log_path(state_dir)
    for current in log.handlers:
        if isinstance(current, RotatingFileHandler) and current.baseFilename == str(
            path.absolute()
        ):
            return path
    state_dir.mkdir(parents=True, exist_ok=True)
    handler = PrivateRotatingFileHandler(
        path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
    )
    handler.setFormatter(RedactingFormatter(FORMAT))
    close_console_log()
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    return path


def close_console_log() -> None:
    """Stop writing the log file (the console's log goes nowhere until set up again)."""
    for old in [h for h in log.handlers if isinstance(h, RotatingFileHandler)]:
        log.removeHandler(old)
        old.close()


ACTING_USER: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "acting_user", default=None
)
"""The user a server acts for (its client's peer uid), while it runs that client's request."""


@functools.cache
def _process_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError, ImportError):
        return f"uid {os.getuid()}"


def operator() -> str:
    """Who acts: the attached client's OS user inside a server request, else this process's."""
    return ACTING_USER.get() or _process_user()


def audit(action: str, result: str) -> None:
    """Record one operator action and its result: ``user root: restart worker-2: done``."""
    audit_log.info("user %s: %s: %s", operator(), action, result)


def describe_result(result: object) -> str:
    """An action's result in words (a string, or an object with ``outcome`` and ``message``)."""
    outcome, message = getattr(result, "outcome", None), getattr(result, "message", None)
    if message is not None:
        return f"{getattr(outcome, 'value', outcome)}: {message}" if outcome else str(message)
    return "done" if result is None else str(result)


def audited(template: str) -> Callable[[F], F]:
    """Decorate an action so every call is audited; ``template`` names it from its arguments,
    e.g. ``"restart {name}"``. An exception is audited as a failure and raised again."""

    def decorate(func: F) -> F:
        signature = inspect.signature(func)

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            action = template.format(**bound.arguments)
            try:
                result = func(*args, **kwargs)
            except Exception as exc:
                audit(action, f"failed: {type(exc).__name__}: {exc}")
                raise
            audit(action, describe_result(result))
            return result

        return wrapper  # type: ignore[return-value]

    return decorate
