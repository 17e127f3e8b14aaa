"""Lean Celery event stream for the Redis transport: raw pub/sub frames, no kombu Message churn.

kombu delivers Redis fanout messages one poll at a time, building a Message object and
decoding through its serializer registry for each; at 15,000 events/s that alone uses a
whole core. This reader subscribes to the same pattern kombu would, reads the socket in
large chunks, splits RESP frames by offsets and decodes the JSON envelope and body directly.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import Any

import msgspec
from kombu import Connection
from kombu.serialization import loads as kombu_loads

MessageHandler = Callable[[Any], None]
RejectHandler = Callable[[int], None]
CHUNK = 1 << 18


class ProtocolError(ConnectionError):
    """The byte stream from Redis could not be parsed as RESP push frames."""


def supports(conn: Connection) -> bool:
    """Whether ``conn`` is a plain Redis transport this reader knows how to follow."""
    return conn.transport.driver_type == "redis" and conn.transport_cls in ("redis", "rediss")


def parse_frames(
    buf: bytes | bytearray, pos: int, out: list[list[Any]], limit: int | None = None
) -> int:
    """Append complete RESP arrays in ``buf`` from ``pos`` to ``out`` (at most ``limit``)."""
    end = len(buf)
    while pos < end and (limit is None or len(out) < limit):
        if buf[pos] not in b"*>":
            raise ProtocolError(f"unexpected RESP type byte {buf[pos : pos + 1]!r}")
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return pos
        count = int(buf[pos + 1 : eol])
        cur = eol + 2
        items: list[Any] = []
        for _ in range(count):
            if cur >= end:
                return pos
            eol = buf.find(b"\r\n", cur)
            if eol < 0:
                return pos
            kind = buf[cur]
            if kind == 36:  # "$" bulk string
                size = int(buf[cur + 1 : eol])
                start = eol + 2
                if start + size + 2 > end:
                    return pos
                items.append(bytes(buf[start : start + size]))
                cur = start + size + 2
            elif kind == 58:  # ":" integer
                items.append(int(buf[cur + 1 : eol]))
                cur = eol + 2
            else:
                raise ProtocolError(f"unexpected RESP item type {bytes([kind])!r}")
        out.append(items)
        pos = cur
    return pos


class RedisEventStream:
    """Follows the Celery event exchange over Redis pub/sub, calling ``handler`` per batch.

    Each ``read`` hands every event that arrived in one socket read to ``handler`` as one list,
    so the state takes its lock once per read rather than once per event.
    """

    def __init__(
        self,
        conn: Connection,
        exchange: str,
        handler: MessageHandler,
        on_rejected: RejectHandler | None = None,
        *,
        binding: str = "#",
    ) -> None:
        channel: Any = conn.default_channel  # kombu.transport.redis.Channel
        options = conn.transport_options or {}
        prefix = options.get("global_keyprefix", "") or ""
        # kombu publishes to "<prefix><exchange>/<routing key>"; a binding's "#" is a glob "*",
        # so Redis itself drops what the binding does not match (PSUBSCRIBE filters per pattern)
        topic = binding.replace("#", "*")
        self.pattern = f"{prefix}{channel.keyprefix_fanout}{exchange}/{topic}"
        self._handler = handler
        self._on_rejected = on_rejected  # called with how many messages could not be decoded
        self._redis = channel.client.connection_pool.make_connection()
        self._buf = bytearray()
        self._datas: list[bytes] = []
        self._head = pmessage_head(self.pattern.encode())
        self.caught_up = True  # the last read took less than a full chunk: nothing was waiting

    def open(self, timeout: float) -> None:
        """Connect and subscribe; raise on failure."""
        self._redis.connect()
        self._redis.send_command("PSUBSCRIBE", self.pattern)
        sock = self._redis._sock  # read raw frames; redis-py's parser costs ~10 us a message
        if sock is None:
            raise ConnectionError("Redis connection has no socket")
        sock.settimeout(timeout)

    def close(self) -> None:
        """Drop the connection."""
        self._redis.disconnect()

    def read(self) -> int:
        """Block up to the socket timeout for data; dispatch what arrived; return messages."""
        sock = self._redis._sock
        if sock is None:
            raise ConnectionError("Redis connection closed")
        chunk = sock.recv(CHUNK)
        if not chunk:
            raise ConnectionError("Redis closed the connection")
        self.caught_up = len(chunk) < CHUNK
        buf = self._buf
        buf += chunk
        datas = self._datas
        pos = parse_messages(buf, 0, datas, self._head)
        del buf[:pos]
        if not datas:
            return 0
        handled = len(datas)
        rejected: list[bytes] = []
        events = decode_batch(datas, rejected)
        datas.clear()
        if rejected and self._on_rejected is not None:
            self._on_rejected(len(rejected))
        if events:
            self._handler(events)
        return handled


def pmessage_head(pattern: bytes) -> bytes:
    """The bytes every ``pmessage`` push for ``pattern`` starts with."""
    return b"*4\r\n$8\r\npmessage\r\n$%d\r\n%s\r\n" % (len(pattern), pattern)


def parse_messages(buf: bytearray, pos: int, out: list[bytes], head: bytes) -> int:
    """Append the payload of each complete (p)message frame in ``buf`` to ``out``; return pos.

    Frames that start with ``head`` (our own pattern's pmessages, nearly all of them) are cut
    by offsets; anything else goes through :func:`parse_frames`.
    """
    end = len(buf)
    skip = len(head)
    tail = head[1:]  # a push is "*4" in RESP2 and ">4" in RESP3 (redis-py's default from v8 on)
    find = buf.find
    other: list[list[Any]] = []
    while pos < end:
        if buf[pos] in b"*>" and buf.startswith(tail, pos + 1):
            cur = pos + skip  # at the channel's "$<len>\r\n"
            eol = find(b"\r\n", cur)
            if eol < 0:
                return pos
            cur = eol + 2 + int(buf[cur + 1 : eol]) + 2  # past the channel
            eol = find(b"\r\n", cur)
            if eol < 0 or cur >= end:
                return pos
            start = eol + 2
            stop = start + int(buf[cur + 1 : eol])
            if stop + 2 > end:
                return pos
            out.append(bytes(buf[start:stop]))
            pos = stop + 2
            continue
        after = parse_frames(buf, pos, other, limit=1)
        if after == pos:
            return pos
        pos = after
        for frame in other:
            kind = frame[0]
            if kind == b"pmessage" and len(frame) == 4:
                out.append(frame[3])
            elif kind == b"message" and len(frame) == 3:
                out.append(frame[2])
        other.clear()
    return pos


_json_array = msgspec.json.Decoder(list).decode
"""JSON array of event bodies -> list of plain objects (as ``json.loads`` makes them)."""
_FAST_HEAD = b'{"body": "'
_FAST_MARKS = (b'"content-type": "application/json"', b'"body_encoding": "base64"')


def decode_batch(datas: list[bytes], rejected: list[bytes] | None = None) -> list[Any]:
    """Decode many kombu Redis envelopes to one flat list of event dicts, in order.

    kombu's usual envelope (base64 JSON body first) is cut open by offsets and the bodies are
    parsed together in one ``json.loads``; anything else goes through :func:`decode`. Messages
    that cannot be decoded are skipped, and appended to ``rejected`` when it is given.
    """
    events: list[Any] = []
    pending: list[bytes] = []
    b64 = binascii.a2b_base64
    head_len = len(_FAST_HEAD)
    mark_type, mark_b64 = _FAST_MARKS
    for data in datas:
        if data.startswith(_FAST_HEAD):
            end = data.find(b'"', head_len)
            if end > 0 and data.find(mark_type, end) > 0 and data.find(mark_b64, end) > 0:
                try:
                    pending.append(b64(data[head_len:end]))
                    continue
                except binascii.Error:
                    pass
        if pending:
            _flush(pending, events, rejected)
        body = decode(data)
        if not isinstance(body, dict | list) and rejected is not None:
            rejected.append(data)  # undecodable, or not an event (nor a list of them)
        _add(body, events)
    if pending:
        _flush(pending, events, rejected)
    return events


def _add(body: Any, events: list[Any]) -> None:
    if isinstance(body, dict):
        events.append(body)
    elif isinstance(body, list):  # workers send buffered task events as one list
        events.extend(body)


def _flush(bodies: list[bytes], events: list[Any], rejected: list[bytes] | None) -> None:
    """Parse JSON bodies as one array; on a bad one, parse them one by one and skip it."""
    try:  # msgspec's decoder: the profile's largest share at 14,000 tasks/s was json.loads
        parsed = _json_array(b"[" + b",".join(bodies) + b"]")
    except (ValueError, msgspec.DecodeError):
        parsed = []
        for body in bodies:
            try:
                parsed.append(json.loads(body))
            except ValueError:
                if rejected is not None:
                    rejected.append(body)
    append = events.append
    for body in parsed:
        if type(body) is dict:
            append(body)
        elif isinstance(body, list):
            _add(body, events)
        elif rejected is not None:
            rejected.append(json.dumps(body).encode())
    bodies.clear()


def decode(data: bytes) -> Any:
    """Decode one kombu Redis envelope to its body (a dict or a list of event dicts)."""
    try:
        envelope = json.loads(data)
        body = envelope["body"]
        properties = envelope.get("properties") or {}
        if properties.get("body_encoding") == "base64":
            body = base64.b64decode(body)
        content_type = envelope.get("content-type")
        if content_type == "application/json":
            return json.loads(body)
        return kombu_loads(
            body, content_type, envelope.get("content-encoding"), accept={"application/json"}
        )
    except Exception:
        return None  # a malformed or unacceptable message is skipped, never fatal
