"""Validation and normalisation of raw events, free of Celery so it is cheap to test.

The raw event the console (or any producer) sends to ``workers.process_event``::

    {
        "event_id": "<32 hex chars>",          # required; a dashed UUID is accepted too
        "project": "default",                  # optional, default "default"
        "level": "error",                      # fatal|error|warning|info|debug, else "error"
        "message": "...",                      # optional; trimmed to 8 KiB of UTF-8
        "platform": "python",                  # optional, default "other"
        "timestamp": 1.7e9,                    # unix seconds (number or numeric string);
                                               # default: when it was processed
        "tags": {"key": "value"},              # optional mapping; keys and values become strings
        "exception": {"type": "ValueError", "value": "..."},   # optional
        "fingerprint": ["{{ default }}", "x"], # optional; a string or list of strings
    }

The normalised event adds ``received`` (unix seconds) and turns ``fingerprint`` into the
40-char SHA-1 hex of the given fingerprint parts, or of exception type + message.
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from collections.abc import Mapping
from typing import Any

MAX_MESSAGE_BYTES = 8 * 1024
MAX_SHORT_FIELD = 200
LEVELS = frozenset({"fatal", "error", "warning", "info", "debug"})
LEVEL_ALIASES = {"critical": "fatal", "warn": "warning", "exception": "error"}
DEFAULT_LEVEL = "error"
DEFAULT_PLATFORM = "other"
DEFAULT_PROJECT = "default"
_EVENT_ID = re.compile(r"[0-9a-f]{32}")


class InvalidEvent(ValueError):
    """A raw event that cannot be normalised; it is logged and dropped, never retried."""


def trim_utf8(text: str, limit: int = MAX_MESSAGE_BYTES) -> str:
    """Cut `text` to at most `limit` bytes of UTF-8 without splitting a character."""
    encoded = text.encode("utf-8", "replace")
    if len(encoded) <= limit:
        return text
    return encoded[:limit].decode("utf-8", "ignore")


def normalise_event_id(value: Any) -> str:
    """32 lower-case hex chars, from that or from a dashed UUID; InvalidEvent otherwise."""
    if not isinstance(value, str):
        raise InvalidEvent(f"event_id must be a string of 32 hex chars, got {type(value).__name__}")
    candidate = value.strip().lower().replace("-", "")
    if not _EVENT_ID.fullmatch(candidate):
        raise InvalidEvent(f"event_id must be 32 hex chars, got {value[:64]!r}")
    return candidate


def normalise_level(value: Any) -> str:
    """A known level in lower case; anything else becomes "error"."""
    if not isinstance(value, str):
        return DEFAULT_LEVEL
    level = value.strip().lower()
    level = LEVEL_ALIASES.get(level, level)
    return level if level in LEVELS else DEFAULT_LEVEL


def normalise_timestamp(value: Any, default: float) -> float:
    """Unix seconds as a finite float; `default` when missing; InvalidEvent when unusable."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidEvent(f"timestamp must be a number, got {type(value).__name__}")
    try:
        ts = float(value)
    except ValueError:
        raise InvalidEvent(f"timestamp must be a number, got {str(value)[:64]!r}") from None
    if not math.isfinite(ts) or ts < 0:
        raise InvalidEvent(f"timestamp must be a finite non-negative number, got {value!r}")
    return ts


def _short_text(event: Mapping[str, Any], key: str, default: str) -> str:
    value = event.get(key)
    if value is None:
        return default
    if not isinstance(value, str):
        raise InvalidEvent(f"{key} must be a string, got {type(value).__name__}")
    text = value.strip()[:MAX_SHORT_FIELD]
    return text or default


def _exception(event: Mapping[str, Any]) -> dict[str, str] | None:
    value = event.get("exception")
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidEvent(f"exception must be an object, got {type(value).__name__}")
    exc_type = value.get("type")
    exc_value = value.get("value")
    return {
        "type": trim_utf8(str(exc_type or ""), MAX_SHORT_FIELD),
        "value": trim_utf8(str(exc_value or "")),
    }


def _tags(event: Mapping[str, Any]) -> dict[str, str]:
    value = event.get("tags")
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidEvent(f"tags must be an object, got {type(value).__name__}")
    return {
        trim_utf8(str(key), MAX_SHORT_FIELD): trim_utf8(str(val), MAX_SHORT_FIELD)
        for key, val in value.items()
    }


def compute_fingerprint(given: Any, exc_type: str, message: str) -> str:
    """SHA-1 hex of the given fingerprint parts, else of exception type + message."""
    if isinstance(given, str) and given:
        parts = [given]
    elif isinstance(given, list | tuple) and given:
        parts = [str(part) for part in given]
    elif given in (None, "", [], ()):
        parts = [exc_type, message]
    else:
        raise InvalidEvent(f"fingerprint must be a string or a list, got {type(given).__name__}")
    return hashlib.sha1("\n".join(parts).encode("utf-8", "replace")).hexdigest()


def normalise_event(raw: Any, received: float | None = None) -> dict[str, Any]:
    """Validate a raw event and return its normalised form; raise InvalidEvent if malformed."""
    if not isinstance(raw, Mapping):
        raise InvalidEvent(f"an event must be an object, got {type(raw).__name__}")
    now = time.time() if received is None else float(received)
    event_id = normalise_event_id(raw.get("event_id"))
    exception = _exception(raw)
    message_value = raw.get("message")
    if message_value is not None and not isinstance(message_value, str):
        raise InvalidEvent(f"message must be a string, got {type(message_value).__name__}")
    message = (message_value or "").strip()
    if not message and exception is not None:
        message = f"{exception['type']}: {exception['value']}".strip(": ")
    message = trim_utf8(message)
    exc_type = exception["type"] if exception else ""
    normalised: dict[str, Any] = {
        "event_id": event_id,
        "project": _short_text(raw, "project", DEFAULT_PROJECT),
        "level": normalise_level(raw.get("level")),
        "message": message,
        "platform": _short_text(raw, "platform", DEFAULT_PLATFORM).lower(),
        "timestamp": normalise_timestamp(raw.get("timestamp"), now),
        "received": now,
        "tags": _tags(raw),
        "fingerprint": compute_fingerprint(raw.get("fingerprint"), exc_type, message),
    }
    if exception is not None:
        normalised["exception"] = exception
    return normalised
