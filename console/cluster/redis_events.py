"""Lean Celery event stream for the Redis transport: raw pub/sub frames, no kombu Message churn.

kombu delivers Redis fanout messages one poll at a time, building a Message object and
decoding through its serializer registry for each; at 15,000 events/s that alone uses a
whole core. This reader subscribes to the same pattern kombu would, reads the socket in
large chunks, splits RESP frames by offsets and decodes the JSON envelope and body directly.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

from kombu import Connection
from kombu.serialization import loads as kombu_loads

MessageHandler = Callable[[Any], None]
CHUNK = 1 << 18


class ProtocolError(ConnectionError):
    """The byte stream from Redis could not be parsed as RESP push frames."""


def supports(conn: Connection) -> bool:
    """Whether ``conn`` is a plain Redis transport this reader knows how to follow."""
    return conn.transport.driver_type == "redis" and conn.transport_cls in ("redis", "rediss")


def parse_frames(buf: bytes | bytearray, pos: int, out: list[list[Any]]) -> int:
    """Append every complete RESP array in ``buf`` from ``pos`` to ``out``; return the new pos."""
    end = len(buf)
    while pos < end:
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
    """Follows the Celery event exchange over Redis pub/sub, calling ``handler`` per body."""

    def __init__(self, conn: Connection, exchange: str, handler: MessageHandler) -> None:
        channel: Any = conn.default_channel  # kombu.transport.redis.Channel
        options = conn.transport_options or {}
        prefix = options.get("global_keyprefix", "") or ""
        self.pattern = f"{prefix}{channel.keyprefix_fanout}{exchange}/*"
        self._handler = handler
        self._redis = channel.client.connection_pool.make_connection()
        self._buf = bytearray()
        self._frames: list[list[Any]] = []

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
        buf = self._buf
        buf += chunk
        frames = self._frames
        pos = parse_frames(buf, 0, frames)
        del buf[:pos]
        handled = 0
        for frame in frames:
            kind = frame[0]
            if kind == b"pmessage" and len(frame) == 4:
                data = frame[3]
            elif kind == b"message" and len(frame) == 3:
                data = frame[2]
            else:
                continue
            body = decode(data)
            if body is not None:
                self._handler(body)
                handled += 1
        frames.clear()
        return handled


_FAST_HEAD = b'{"body": "'
_FAST_MARKS = (b'"content-type": "application/json"', b'"body_encoding": "base64"')


def decode(data: bytes) -> Any:
    """Decode one kombu Redis envelope to its body (a dict or a list of event dicts)."""
    try:
        if data.startswith(_FAST_HEAD):
            # kombu writes the base64 body first; skip parsing the envelope around it
            end = data.find(b'"', 10)
            tail = data[end:]
            if end > 0 and _FAST_MARKS[0] in tail and _FAST_MARKS[1] in tail:
                return json.loads(base64.b64decode(data[10:end]))
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
