"""The event replay in its own process: every message pre-built, sent in paced pipelines.

Run by the runner as ``python -m tests.benchmarks.compare.publisher --db N --rate R --seconds S
--first F [--cpu C]``. It pins itself to core ``C``, builds every task's three events (received,
started, succeeded) in kombu's Redis wire format, packed as raw ``PUBLISH`` commands in 10 ms
chunks, prints ``ready``, waits for a line on stdin, then writes the chunks on one socket at the
nominal pace and prints one JSON line: tasks sent, start and end (monotonic), achieved tasks/s.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import sys
import time
import uuid

HOST, PORT = "127.0.0.1", 6379
WORKERS = [f"bench-{n}@host" for n in range(4)]
ARGS = repr(({"event_id": "0" * 32, "project": "default", "level": "error", "n": 1},))
KINDS = ("task.received", "task.started", "task.succeeded")
CHUNK_SECONDS = 0.01


def _bodies(worker: int) -> list[bytes]:
    """The JSON bodies of one worker's three events, with ``@UUID@``/``"@CLOCK@"`` holes."""
    common = {"hostname": WORKERS[worker], "utcoffset": 0, "pid": 1000 + worker, "uuid": "@UUID@"}
    now = time.time()
    received = dict(common, type="task-received", clock="@CLOCK@", timestamp=now,
                    name="workers.process_event", args=ARGS, kwargs="{}", root_id="@UUID@",
                    parent_id=None, retries=0, eta=None, expires=None)  # fmt: skip
    started = dict(common, type="task-started", clock="@CLOCK@", timestamp=now)
    done = dict(common, type="task-succeeded", clock="@CLOCK@", timestamp=now,
                result="'ok'", runtime=0.0042)  # fmt: skip
    return [json.dumps(body).encode() for body in (received, started, done)]


def _envelope(worker: int, kind: str) -> bytes:
    """The kombu Redis-transport envelope around a body, with ``%(body)s`` and tag holes."""
    return (
        f'{{"body": "@BODY@", "content-encoding": "utf-8", "content-type": "application/json", '
        f'"headers": {{"hostname": "{WORKERS[worker]}"}}, "properties": {{"delivery_mode": 1, '
        f'"delivery_info": {{"exchange": "celeryev", "routing_key": "{kind}"}}, '
        f'"priority": 0, "body_encoding": "base64", "delivery_tag": "bench-@TAG@"}}}}'
    ).encode()


def build_chunks(db: int, rate: int, seconds: float, first: int) -> list[tuple[int, bytes]]:
    """Every 10 ms chunk of the replay as (messages, packed PUBLISH commands)."""
    tasks_total = int(rate * seconds)
    per_chunk = max(1, round(rate * CHUNK_SECONDS))
    suffix = uuid.uuid4().hex[:12].encode()
    channels = [f"/{db}.celeryev/{kind}".encode() for kind in KINDS]
    heads = [b"*3\r\n$7\r\nPUBLISH\r\n$%d\r\n%s\r\n" % (len(c), c) for c in channels]
    parts = []
    for worker in range(len(WORKERS)):
        bodies = _bodies(worker)
        parts.append([
            (heads[k], bodies[k], _envelope(worker, KINDS[k]).split(b"@BODY@"))
            for k in range(3)
        ])  # fmt: skip
    b64 = base64.b64encode
    chunks: list[tuple[int, bytes]] = []
    for start in range(first, first + tasks_total, per_chunk):
        out = []
        stop = min(start + per_chunk, first + tasks_total)
        for i in range(start, stop):
            task_id = b"%08x-0000-4000-8000-%s" % (i, suffix)
            for k, (head, body, (before, after)) in enumerate(parts[i % 4]):
                n = 3 * i + k
                filled = body.replace(b"@UUID@", task_id).replace(b'"@CLOCK@"', b"%d" % n)
                message = before + b64(filled) + after.replace(b"@TAG@", b"%d" % n)
                out.append(head + b"$%d\r\n%s\r\n" % (len(message), message))
        chunks.append((3 * (stop - start), b"".join(out)))
    return chunks


def _read_replies(sock: socket.socket, count: int, pending: bytearray) -> None:
    """Consume ``count`` integer replies (``:n\\r\\n``) from ``sock``."""
    while pending.count(b"\n") < count:
        data = sock.recv(1 << 20)
        if not data:
            raise ConnectionError("Redis closed the connection")
        pending += data
    cut = 0
    for _ in range(count):
        cut = pending.index(b"\n", cut) + 1
    del pending[:cut]


def replay(chunks: list[tuple[int, bytes]], rate: int) -> dict[str, float]:
    """Send the chunks at ``rate`` tasks/s; the figures of what was achieved."""
    per_second = rate * 3
    sock = socket.create_connection((HOST, PORT))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    pending = bytearray()
    sent = 0
    began = time.monotonic()
    for count, data in chunks:
        sock.sendall(data)
        _read_replies(sock, count, pending)
        sent += count
        ahead = began + sent / per_second - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
    ended = time.monotonic()
    sock.close()
    took = max(ended - began, 1e-9)
    return {"sent": sent, "began": began, "ended": ended, "rate": sent / 3 / took}


def main() -> None:
    """Build, say ready, wait for the go line, replay, print the result as JSON."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", type=int, required=True)
    parser.add_argument("--rate", type=int, required=True, help="tasks per second")
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--first", type=int, default=0, help="number of the first task")
    parser.add_argument("--cpu", type=int, default=None, help="core to pin this process to")
    opts = parser.parse_args()
    if opts.cpu is not None and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {opts.cpu})
    chunks = build_chunks(opts.db, opts.rate, opts.seconds, opts.first)
    print("ready", flush=True)
    if not sys.stdin.readline():
        return
    print(json.dumps(replay(chunks, opts.rate)), flush=True)


if __name__ == "__main__":
    main()
