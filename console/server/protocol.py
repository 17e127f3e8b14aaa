"""The wire format between the supervisor server and its clients: JSON lines on a unix socket.

Every message is one JSON object on one line. A client opens with ``hello`` naming the protocol
version; requests carry an ``id`` that their reply repeats; the server pushes ``data`` (a whole
dashboard snapshot) and ``line`` (followed output) messages without one.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import hashlib
import json
import os
import types
import typing
from pathlib import Path
from typing import Any

from console.runtime import DashboardData

PROTOCOL_VERSION = 1
SOCKET_NAME = "console.sock"
SUN_PATH_MAX = 107  # sun_path is 108 bytes including the terminating NUL
MAX_LINE = 16 * 1024 * 1024
"""Longest message accepted; a snapshot of a large cluster is well under this."""

# Exit codes of ``ctl``.
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NO_SERVER = 0, 1, 2, 3


class ProtocolError(Exception):
    """A message that does not follow the protocol."""


def socket_path(state_dir: Path) -> Path:
    """Where the server listens: in the state dir, or a short private /tmp dir when too long."""
    state = Path(os.path.abspath(state_dir))
    candidate = state / SOCKET_NAME
    if len(os.fsencode(candidate)) <= SUN_PATH_MAX:
        return candidate
    digest = hashlib.sha256(os.fsencode(state)).hexdigest()[:16]
    return Path("/tmp") / f"sentry-console-{os.getuid()}-{digest}" / SOCKET_NAME


def encode(message: dict[str, Any]) -> bytes:
    """One message as a line of JSON."""
    return json.dumps(message, separators=(",", ":"), default=_default).encode() + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    """One line of JSON as a message (a dict), or ProtocolError."""
    try:
        value = json.loads(line)
    except ValueError as exc:
        raise ProtocolError(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ProtocolError("a message must be a JSON object")
    return value


def _default(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, frozenset | set):
        return sorted(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot send {type(value).__name__}")


def data_from_json(value: dict[str, Any]) -> DashboardData:
    """A snapshot rebuilt from what :func:`encode` made of it."""
    result = from_json(DashboardData, value)
    assert isinstance(result, DashboardData)
    return result


@functools.cache
def _hints(tp: type) -> dict[str, Any]:
    """A dataclass's resolved field types (resolving them costs more than decoding a row)."""
    return typing.get_type_hints(tp)


def from_json(tp: Any, value: Any) -> Any:
    """``value`` (plain JSON) converted to the type ``tp`` names: dataclasses, enums, containers."""
    if value is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        return from_json(options[0], value) if len(options) == 1 else value
    if origin is typing.Literal:
        return value
    if origin in (tuple, list, frozenset, set):
        args = typing.get_args(tp)
        item = args[0] if args else Any
        return origin(from_json(item, v) for v in value)
    if origin is dict:
        _, item = typing.get_args(tp) or (Any, Any)
        return {k: from_json(item, v) for k, v in value.items()}
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        hints = _hints(tp)
        known = {f.name for f in dataclasses.fields(tp) if f.init}
        return tp(**{k: from_json(hints[k], v) for k, v in value.items() if k in known})
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return tp(value)
    if tp is float and isinstance(value, int):
        return float(value)
    return value
