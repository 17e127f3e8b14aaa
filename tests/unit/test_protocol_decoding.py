"""Request decoding: any bytes give a typed request or one ProtocolError, never anything else."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from console.server import protocol as P

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=30,
)
OP_NAMES = ("hello", "subscribe", "output", "watch", "task", "status", "tail", "action", "job")
OPS = st.sampled_from((*OP_NAMES, "jobs", "shutdown", "nope", ""))


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=400))
def test_any_bytes_decode_or_raise_protocol_error(raw: bytes) -> None:
    try:
        request = P.decode_request(raw)
    except P.ProtocolError as exc:
        assert str(exc)
    else:
        assert isinstance(request, P.Request)


@settings(max_examples=400, deadline=None)
@given(OPS, st.dictionaries(st.text(max_size=10), JSON, max_size=5))
def test_any_json_object_decodes_typed_or_raises_protocol_error(
    op: str, fields: dict[str, object]
) -> None:
    line = json.dumps({"op": op, **fields}).encode()
    try:
        request = P.decode_request(line)
    except P.ProtocolError:
        return
    assert isinstance(request, P.Request)
    if isinstance(request, P.Action):
        assert all(
            isinstance(v, str | int | float | bool | type(None)) for v in request.args.values()
        )
    if isinstance(request, P.Tail):
        assert 0 <= request.lines <= 100_000


def test_nesting_beyond_any_limit_is_one_error() -> None:
    for raw in (b"[" * 200_000, b'{"op":"hello","version":' + b"[" * 100_000):
        try:
            P.decode_request(raw)
        except P.ProtocolError as exc:
            assert "bad request" in str(exc) or "not JSON" in str(exc)
        else:  # pragma: no cover - the assertion is the point
            raise AssertionError("accepted")
