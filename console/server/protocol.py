"""The wire format between the supervisor server and its clients: JSON lines on a unix socket.

Every message is one JSON object on one line. A client opens with ``hello`` naming the protocol
version (nothing else is served before it); requests carry an ``id`` that their reply repeats;
the server pushes ``data`` (a dashboard snapshot: whole on subscribing, then only the fields
that changed, and nothing while only time passed) and ``line`` (followed output) messages
without one. Requests are decoded into typed structs (msgspec): a line that is not one of them,
or longer than :data:`MAX_REQUEST`, is refused before anything acts on it.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import json
import types
import typing
from pathlib import Path
from typing import Annotated, Any

import msgspec

from console import statedir
from console.screenkey import shown
from console.snapshot import DashboardData

PROTOCOL_VERSION = 3
SOCKET_NAME = "console.sock"
SUN_PATH_MAX = statedir.SUN_PATH_MAX
MAX_LINE = 16 * 1024 * 1024
"""Longest message a client accepts; a snapshot of a large cluster is well under this."""
MAX_REQUEST = 64 * 1024
"""Longest request the server accepts: a longer line is refused whole and the client dropped."""
MAX_WAIT = 3600.0
"""Longest a request may ask the server to wait for its job."""
MAX_WATCHES = 4
"""Program outputs one client may follow at once (the oldest is dropped first)."""

# Exit codes of ``ctl``.
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NO_SERVER, EXIT_PENDING = 0, 1, 2, 3, 4


class ProtocolError(Exception):
    """A message that does not follow the protocol."""


def socket_path(state_dir: Path) -> Path:
    """Where a server for ``state_dir`` listens (see :mod:`console.statedir`)."""
    return statedir.socket_path(state_dir, SOCKET_NAME)


def socket_candidates(state_dir: Path) -> list[Path]:
    """Where a client looks for the server's socket, in order: where a server of this session
    would listen, then where the running server recorded it listens (another session's)."""
    candidates = statedir.socket_candidates(state_dir, SOCKET_NAME)
    recorded = statedir.recorded_socket(state_dir, SOCKET_NAME)
    if recorded is not None and recorded not in candidates:
        candidates.append(recorded)
    return candidates


# Requests: each a typed struct, told apart by ``op``. Anything else is refused before it acts.
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
Lines = Annotated[int, msgspec.Meta(ge=0, le=100_000)]
Seconds = Annotated[float, msgspec.Meta(ge=0, le=MAX_WAIT)]
RequestId = int | str | None
Scalar = str | int | float | bool | None


class Request(msgspec.Struct, tag_field="op", kw_only=True, forbid_unknown_fields=True):
    """Every request: an ``op`` naming it and an ``id`` its reply repeats."""

    id: RequestId = None


class Hello(Request, tag="hello"):
    version: int
    read_only: bool = False


class Subscribe(Request, tag="subscribe"):
    pass


class Output(Request, tag="output"):
    name: Name
    last: Lines | None = None
    stamps: bool = False


class Watch(Request, tag="watch"):
    name: Name
    last: Lines | None = None
    stamps: bool = False


class Task(Request, tag="task"):
    uuid: Name


class Status(Request, tag="status"):
    jobs: Lines = 10


class Tail(Request, tag="tail"):
    name: Name
    lines: Lines = 10
    follow: bool = False


class Action(Request, tag="action"):
    action: Name
    args: dict[Name, Scalar] = {}
    key: Annotated[str, msgspec.Meta(min_length=1, max_length=128)] | None = None
    wait: Seconds = 0.0


class Job(Request, tag="job"):
    job: Annotated[int, msgspec.Meta(ge=1)]
    wait: Seconds = 0.0


class Jobs(Request, tag="jobs"):
    count: Lines = 20


class Shutdown(Request, tag="shutdown"):
    now: bool = False


AnyRequest = (
    Hello | Subscribe | Output | Watch | Task | Status | Tail | Action | Job | Jobs | Shutdown
)
_requests = msgspec.json.Decoder(AnyRequest)


class _JustId(msgspec.Struct):
    id: RequestId = None


_ids = msgspec.json.Decoder(_JustId)


def decode_request(line: bytes) -> Request:
    """One line as a typed request, or ProtocolError saying what is wrong with it."""
    try:
        request = _requests.decode(line)
    except msgspec.ValidationError as exc:
        raise ProtocolError(f"bad request: {exc}") from None
    except msgspec.DecodeError as exc:
        raise ProtocolError(f"not JSON: {exc}") from None
    assert isinstance(request, Request)
    return request


def request_id(line: bytes) -> RequestId:
    """The ``id`` of a request that failed to decode, when one can be read from it."""
    try:
        return _ids.decode(line).id
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None


def encode(message: dict[str, Any]) -> bytes:
    """One message as a line of JSON."""
    return _dumps(message) + b"\n"


def _path_text(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot send {type(value).__name__}")


# msgspec writes dataclasses, enums and (sorted: the same content, the same bytes, so an
# unchanged field is seen unchanged) sets itself: a snapshot's fields in 0.03 ms, not 0.5.
_dumps = msgspec.json.Encoder(enc_hook=_path_text, order="deterministic").encode


def snapshot_fields(data: DashboardData) -> dict[str, bytes]:
    """Each field of a snapshot as JSON of its own, so that what did not change is not resent."""
    return {f.name: _dumps(getattr(data, f.name)) for f in dataclasses.fields(data)}


def screen_key(data: DashboardData, fields: dict[str, bytes]) -> dict[str, bytes]:
    """What of a snapshot a screen can see change (:mod:`console.screenkey`), by field; the
    time it was taken is not in it. ``fields``: the snapshot's :func:`snapshot_fields`."""
    key = dict(fields)
    del key["taken_at"]
    key.update((name, _dumps(value)) for name, value in shown(data).items())
    return key


def data_line(fields: dict[str, bytes]) -> bytes:
    """A ``data`` message: a whole snapshot (every field), or the fields that changed since the
    last one the client was sent (it keeps the others)."""
    body = b",".join(b'"' + name.encode() + b'":' + value for name, value in fields.items())
    return b'{"type":"data","data":{' + body + b"}}\n"


def decode(line: bytes) -> dict[str, Any]:
    """One line of JSON from the server as a message (a dict), or ProtocolError."""
    try:
        value = json.loads(line)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ProtocolError("a message must be a JSON object")
    return value


def data_from_json(value: dict[str, Any]) -> DashboardData:
    """A snapshot rebuilt from what :func:`encode` made of it."""
    result = from_json(DashboardData, value)
    assert isinstance(result, DashboardData)
    return result


def data_updated(data: DashboardData, changed: dict[str, Any]) -> DashboardData:
    """``data`` with the fields a ``data`` message sent (plain JSON) decoded and replaced."""
    hints = _hints(DashboardData)
    fields = {k: from_json(hints[k], v) for k, v in changed.items() if k in hints}
    return dataclasses.replace(data, **fields)


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
