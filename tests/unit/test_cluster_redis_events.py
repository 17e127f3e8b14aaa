"""The lean Redis event reader's framing and decoding, fed byte streams split anywhere."""

from __future__ import annotations

import base64
import json
import random
from typing import Any

import pytest

from console.cluster.redis_events import decode_batch, parse_messages, pmessage_head

PATTERN = b"/1.celeryev/*"


def bulk(*parts: bytes) -> bytes:
    """A RESP array of bulk strings."""
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)


def envelope(body: Any, *, fast: bool = True) -> bytes:
    """A kombu Redis envelope: base64 body first (kombu's layout) or in another key order."""
    encoded = base64.b64encode(json.dumps(body).encode()).decode()
    rest = {
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": {},
        "properties": {"body_encoding": "base64", "delivery_tag": "x"},
    }
    if fast:
        return json.dumps({"body": encoded, **rest}).encode()
    return json.dumps({**rest, "body": encoded}).encode()


def ev(n: int) -> dict[str, Any]:
    return {"type": "task-received", "uuid": f"u{n}", "hostname": "w@h"}


def stream() -> tuple[bytes, list[dict[str, Any]]]:
    frames = [b"*3\r\n$10\r\npsubscribe\r\n$13\r\n/1.celeryev/*\r\n:1\r\n"]
    expected: list[dict[str, Any]] = []
    for n in range(40):
        if n % 10 == 3:
            body: Any = [ev(n), ev(n + 1000)]
            expected += body
        else:
            body = ev(n)
            expected.append(body)
        data = envelope(body, fast=n % 7 != 5)
        if n % 13 == 4:
            frames.append(bulk(b"message", b"/1.celeryev/task.received", data))
        else:
            frames.append(bulk(b"pmessage", PATTERN, b"/1.celeryev/task.received", data))
    frames.append(bulk(b"pmessage", PATTERN, b"/1.celeryev/x", b'{"body": "!!!not json'))
    frames.append(bulk(b"pmessage", PATTERN, b"/1.celeryev/x", b'{"body": "e30=",' + b"x" * 3))
    return b"".join(frames), expected


def test_whole_stream_in_one_read() -> None:
    data, expected = stream()
    out: list[bytes] = []
    pos = parse_messages(bytearray(data), 0, out, pmessage_head(PATTERN))
    assert pos == len(data)
    assert decode_batch(out) == expected


def test_stream_split_at_random_points_gives_the_same_events_in_order() -> None:
    data, expected = stream()
    rng = random.Random(7)
    for _ in range(30):
        buf = bytearray()
        out: list[bytes] = []
        events: list[Any] = []
        i = 0
        while i < len(data):
            step = rng.choice((1, 2, 7, 50, 333, 4096))
            buf += data[i : i + step]
            i += step
            pos = parse_messages(buf, 0, out, pmessage_head(PATTERN))
            del buf[:pos]
            events += decode_batch(out)
            out.clear()
        assert not buf
        assert events == expected


def test_a_bad_body_among_good_ones_is_skipped_alone() -> None:
    good = envelope(ev(1))
    bad = b'{"body": "' + base64.b64encode(b"{nope") + good[good.index(b'", "content') :]
    assert decode_batch([good, bad, envelope(ev(2))]) == [ev(1), ev(2)]


def test_resp3_pushes_take_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """redis-py 8 speaks RESP3, where a pmessage push starts with ">4", not "*4": those are cut
    by offsets too, never handed to the general frame parser (a third of the server's CPU at
    14,000 tasks/s when they were)."""
    from console.cluster import redis_events

    pattern = b"/0.celeryev/*"
    head = redis_events.pmessage_head(pattern)
    frames = bytearray()
    for n, kind in enumerate((b">", b"*", b">")):
        channel, data = b"/0.celeryev/task.succeeded", b'{"n": %d}' % n
        frames += (
            kind
            + head[1:]
            + b"$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(channel), channel, len(data), data)
        )

    def general(*args: object, **kwargs: object) -> int:
        raise AssertionError("a push of our own pattern went to the general parser")

    monkeypatch.setattr(redis_events, "parse_frames", general)
    out: list[bytes] = []
    assert redis_events.parse_messages(frames, 0, out, head) == len(frames)
    assert out == [b'{"n": 0}', b'{"n": 1}', b'{"n": 2}']
