"""Reading ``SENTRY_CONF``: the file it names, and its ``CONSOLE_*`` values, each checked.

What :func:`console.settings.resolve_settings` builds the settings object from; every problem
is a :class:`SettingsError` of one line without secrets.
"""

from __future__ import annotations

import runpy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: Values of ``CONSOLE_EVENTS`` (and ``watch --events``): every event, or worker events only.
EVENT_MODES = ("all", "workers")


class SettingsError(ValueError):
    """A configuration problem, described in one line without secrets."""


def conf_path(value: str) -> Path:
    """The file a ``SENTRY_CONF`` value names (a file, or a directory with sentry.conf.py)."""
    path = Path(value).expanduser()
    if path.is_dir():
        path = path / "sentry.conf.py"
    if not path.exists():
        raise SettingsError(f"SENTRY_CONF: {path} does not exist")
    if not path.is_file():
        raise SettingsError(f"SENTRY_CONF: {path} is not a file")
    return path


def load_conf_file(value: str) -> dict[str, Any]:
    """Execute the configuration file and return its upper-case names."""
    path = conf_path(value)
    try:
        namespace = runpy.run_path(str(path))
    except SyntaxError as exc:
        raise SettingsError(f"SENTRY_CONF: syntax error in {path} line {exc.lineno}") from None
    except Exception as exc:  # any error raised by user code in the file
        raise SettingsError(f"SENTRY_CONF: {path} failed: {type(exc).__name__}") from None
    return {k: v for k, v in namespace.items() if k.isupper()}


def positive(conf: Mapping[str, Any], key: str, default: Any, kind: type) -> Any:
    """``conf[key]`` (or ``default``) as a positive ``kind``, else SettingsError."""
    value = conf.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise SettingsError(f"SENTRY_CONF: {key} must be a positive number")
    return kind(value)


def reload_settings(conf: Mapping[str, Any], base: Path, flag: bool) -> dict[str, Any]:
    """``reload``, ``reload_paths`` and ``reload_patterns`` from the conf file and the flag."""
    enabled = conf.get("CONSOLE_RELOAD", False)
    if not isinstance(enabled, bool):
        raise SettingsError("SENTRY_CONF: CONSOLE_RELOAD must be True or False")
    raw_paths = conf.get("CONSOLE_RELOAD_PATHS", [])
    if isinstance(raw_paths, str) or not isinstance(raw_paths, (list, tuple)):
        raise SettingsError("SENTRY_CONF: CONSOLE_RELOAD_PATHS must be a list of paths")
    paths = []
    for item in raw_paths:
        if not isinstance(item, (str, Path)):
            raise SettingsError("SENTRY_CONF: CONSOLE_RELOAD_PATHS must be a list of paths")
        path = Path(item).expanduser()
        paths.append(path if path.is_absolute() else base / path)
    patterns = conf.get("CONSOLE_RELOAD_PATTERNS", ["*.py"])
    if (
        isinstance(patterns, str)
        or not isinstance(patterns, (list, tuple))
        or not patterns
        or not all(isinstance(p, str) and p for p in patterns)
    ):
        raise SettingsError("SENTRY_CONF: CONSOLE_RELOAD_PATTERNS must be a non-empty list of str")
    enabled = enabled or flag
    if enabled:
        missing = [p for p in paths if not p.exists()]
        if missing:
            raise SettingsError(f"SENTRY_CONF: CONSOLE_RELOAD_PATHS: {missing[0]} does not exist")
    return {"reload": enabled, "reload_paths": tuple(paths), "reload_patterns": tuple(patterns)}


def event_mode(value: Any, source: str = "SENTRY_CONF: CONSOLE_EVENTS") -> str:
    """A checked ``CONSOLE_EVENTS`` value: ``all`` or ``workers``."""
    if value not in EVENT_MODES:
        raise SettingsError(f"{source} must be 'all' or 'workers', not {value!r}")
    return str(value)


def keymap_setting(raw: Any) -> tuple[tuple[str, str], ...]:
    """A checked ``CONSOLE_KEYMAP``: pairs of binding id and keys."""
    if not isinstance(raw, dict):
        raise SettingsError("SENTRY_CONF: CONSOLE_KEYMAP must be a dict of binding id to keys")
    for binding_id, keys in raw.items():
        if not isinstance(binding_id, str) or not isinstance(keys, str) or not keys.strip():
            raise SettingsError(
                f"SENTRY_CONF: CONSOLE_KEYMAP: {binding_id!r} needs keys as a string, like 'ctrl+r'"
            )
    return tuple((binding_id, keys.replace(" ", "")) for binding_id, keys in raw.items())


def metrics_settings(conf: Mapping[str, Any]) -> dict[str, Any]:
    """``metrics``, ``metrics_public`` and ``metrics_hostname`` from the conf file (checked
    further where the listener starts)."""
    address = conf.get("CONSOLE_METRICS")
    if isinstance(address, int) and not isinstance(address, bool):
        address = str(address)
    if address is not None and not isinstance(address, str):
        raise SettingsError(
            'SENTRY_CONF: CONSOLE_METRICS must be "[HOST:]PORT", e.g. "127.0.0.1:9818"'
        )
    public = conf.get("CONSOLE_METRICS_PUBLIC", False)
    if not isinstance(public, bool):
        raise SettingsError("SENTRY_CONF: CONSOLE_METRICS_PUBLIC must be True or False")
    hostname = conf.get("CONSOLE_METRICS_HOSTNAME", "host")
    if hostname not in ("host", "node", "generic"):
        raise SettingsError(
            "SENTRY_CONF: CONSOLE_METRICS_HOSTNAME must be 'host', 'node' or 'generic'"
        )
    return {"metrics": address, "metrics_public": public, "metrics_hostname": hostname}
