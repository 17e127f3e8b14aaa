"""Event ingestion benchmark: the console's receiver + bounded state against celery's State.

Run: ``python tests/benchmarks/bench_event_ingest.py [--events 1000000] [--rate 5000]``.
Publishes pre-built task events (received, started, succeeded per task) in kombu's wire format
for the Redis transport, in pipelines, to a claimed empty database of the Redis at
127.0.0.1:6379; each consumer runs in its own process and is fed the same replay in turn.
Prints events seen / sent, catch-up lag, consumer CPU per event (capacity on one core) and RSS.
"""

from __future__ import annotations

import argparse
import base64
import json
import multiprocessing as mp
import os
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from multiprocessing.sharedctypes import Synchronized
from typing import Any

import psutil
import redis

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))

from tests.redis_claim import claimed_db

HOST, PORT = "127.0.0.1", 6379
WORKERS = [f"bench-{n}@host" for n in range(4)]
ARGS = repr(({"event_id": "0" * 32, "project": "default", "level": "error", "n": 1},))


def envelope(event: dict[str, Any], routing_key: str, n: int) -> bytes:
    """One kombu Redis-transport message (JSON envelope, base64 JSON body)."""
    body = base64.b64encode(json.dumps(event).encode()).decode()
    host = event["hostname"]
    return (
        f'{{"body": "{body}", "content-encoding": "utf-8", "content-type": "application/json", '
        f'"headers": {{"hostname": "{host}"}}, "properties": {{"delivery_mode": 1, '
        f'"delivery_info": {{"exchange": "celeryev", "routing_key": "{routing_key}"}}, '
        f'"priority": 0, "body_encoding": "base64", "delivery_tag": "bench-{n}"}}}}'
    ).encode()


def task_messages(first: int, count: int) -> Iterator[tuple[str, bytes]]:
    """Pre-build the three messages of each of ``count`` tasks from number ``first``."""
    now = time.time()
    for i in range(first, first + count):
        task_id = f"{i:08x}-0000-4000-8000-{uuid.uuid4().hex[:12]}"
        common = {"hostname": WORKERS[i % 4], "utcoffset": 0, "pid": 1000 + i % 4, "uuid": task_id}
        received = dict(common, type="task-received", clock=3 * i, timestamp=now,
                        name="workers.process_event", args=ARGS, kwargs="{}", root_id=task_id,
                        parent_id=None, retries=0, eta=None, expires=None)  # fmt: skip
        started = dict(common, type="task-started", clock=3 * i + 1, timestamp=now)
        done = dict(common, type="task-succeeded", clock=3 * i + 2, timestamp=now,
                    result="'ok'", runtime=0.0042)  # fmt: skip
        yield "task.received", envelope(received, "task.received", 3 * i)
        yield "task.started", envelope(started, "task.started", 3 * i + 1)
        yield "task.succeeded", envelope(done, "task.succeeded", 3 * i + 2)


def publish(client: redis.Redis, db: int, events: int, rate: int) -> tuple[float, float]:
    """Publish ``events`` messages at ``rate`` tasks/s; return (start, end) wall times."""
    prefix = f"/{db}.celeryev/"
    per_second = rate * 3
    chunk = max(3, (per_second // 100) // 3 * 3)  # about 10 ms worth, whole tasks
    pending: list[tuple[str, bytes]] = list(task_messages(0, chunk // 3))
    sent, tasks = 0, chunk // 3
    start = time.monotonic()
    wall_start = time.time()
    while sent < events:
        batch = pending[: events - sent]
        pipe = client.pipeline(transaction=False)
        for key, message in batch:
            pipe.publish(prefix + key, message)
        pipe.execute()
        sent += len(batch)
        pending = list(task_messages(tasks, chunk // 3))  # build the next chunk while ahead
        tasks += chunk // 3
        ahead = start + sent / per_second - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
    return wall_start, time.time()


def consume(kind: str, url: str, counter: Synchronized[int], ready: Any) -> None:
    """Child process: run one consumer and copy its event count into ``counter``."""
    from celery import Celery

    app = Celery("bench", broker=url, set_as_current=False)
    if kind == "console":
        from console.cluster import ClusterMonitor

        monitor = ClusterMonitor(app, poll_interval=5.0)
        monitor.start()
        while monitor.receiver.status != "listening":
            time.sleep(0.05)

        def count() -> int:
            return monitor.state.events_received
    else:
        from celery.events.state import State

        state = State()
        conn = app.connection_for_read()
        receiver = app.events.Receiver(conn, handlers={"*": state.event})
        thread = threading.Thread(
            target=receiver.capture, kwargs={"limit": None, "timeout": None, "wakeup": False}
        )
        thread.daemon = True
        thread.start()
        time.sleep(1.0)  # the Receiver has no ready signal; its subscription is in place by now

        def count() -> int:
            return int(state.event_count)

    ready.set()
    while True:
        counter.value = count()
        time.sleep(0.02)


def run_one(kind: str, client: redis.Redis, db: int, events: int, rate: int) -> dict[str, Any]:
    """Replay to one consumer process and measure it."""
    ctx = mp.get_context("spawn")
    counter = ctx.Value("q", 0)
    ready = ctx.Event()
    proc = ctx.Process(target=consume, args=(kind, f"redis://{HOST}:{PORT}/{db}", counter, ready))
    proc.start()
    try:
        if not ready.wait(30):
            raise SystemExit(f"{kind} consumer did not start")
        ps = psutil.Process(proc.pid)
        rss_idle = ps.memory_info().rss
        cpu0 = sum(ps.cpu_times()[:2])
        _, _ = publish(client, db, events, rate)
        ended = time.monotonic()
        last, last_change = counter.value, time.monotonic()
        while counter.value < events and time.monotonic() - last_change < 5.0:
            time.sleep(0.01)
            if counter.value != last:
                last, last_change = counter.value, time.monotonic()
        lag = time.monotonic() - ended if counter.value >= events else float("nan")
        cpu = sum(ps.cpu_times()[:2]) - cpu0
        seen = counter.value
        return {
            "kind": kind,
            "seen": seen,
            "lag": lag,
            "cpu": cpu,
            "capacity": seen / cpu if cpu else float("nan"),
            "rss_idle": rss_idle / 2**20,
            "rss": ps.memory_info().rss / 2**20,
        }
    finally:
        proc.kill()
        proc.join(5)


def main() -> None:
    """Parse arguments, run both consumers on the same replay, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_002, help="events per replay")
    parser.add_argument("--rate", type=int, default=5_000, help="tasks per second (3 events each)")
    parser.add_argument("--only", choices=["console", "celery-state"], default=None)
    opts = parser.parse_args()
    events = opts.events // 3 * 3
    with claimed_db(HOST, PORT) as claim:
        client, db = claim.client, claim.db
        rows = []
        for kind in ("console", "celery-state"):
            if opts.only and kind != opts.only:
                continue
            print(f"replaying {events:,} events at {opts.rate * 3:,}/s to {kind} ...", flush=True)
            rows.append(run_one(kind, client, db, events, opts.rate))
    print(f"\n{events:,} events ({events // 3:,} tasks) at {opts.rate:,} tasks/s, "
          f"Redis pub/sub, {os.cpu_count()} cores")  # fmt: skip
    head = f"{'consumer':<14}{'seen/sent':>12}{'lag s':>8}{'cpu s':>8}{'events/cpu-s':>14}"
    print(head + f"{'RSS idle MB':>13}{'RSS end MB':>12}")
    for row in rows:
        print(
            f"{row['kind']:<14}{row['seen'] / events:>12.4f}{row['lag']:>8.2f}{row['cpu']:>8.1f}"
            f"{row['capacity']:>14,.0f}{row['rss_idle']:>13.1f}{row['rss']:>12.1f}"
        )


if __name__ == "__main__":
    main()
