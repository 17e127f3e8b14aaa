"""Benchmark: the cost of one Redis capacity poll, and how fast a RabbitMQ memory alarm is seen.

Run from the repository root: ``python tests/benchmarks/bench_capacity.py``. The Redis part claims
an empty database the way tests/conftest.py does (20 queues, 2,000 unacked deliveries written the
way kombu writes them) and deletes it afterwards. The RabbitMQ part (skipped without rabbitmqctl)
lowers the memory watermark of the local RabbitMQ three times for about a second each and puts
the previous value back, also on failure.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from console.broker.rabbit_alarm import BlockedWatcher
from console.broker.redis_capacity import UNACKED_READS_PER_POLL, RedisCapacityProbe
from console.broker.urls import parse_broker_url
from tests.redis_claim import claimed_db

QUEUES = 20
UNACKED = 2000
RUNS = 20
TRIALS = 3


def redis_poll_cost() -> None:
    """Median time and round trips of a capacity poll: the first (reads payloads), then steady."""
    with claimed_db(ttl=1800) as claim:
        client = claim.client
        names = [f"cap-{i:02d}" for i in range(QUEUES)]
        pipe = client.pipeline(transaction=False)
        for name in names:
            pipe.lpush(name, *([b"m" * 512] * 200))
        now = time.time()
        for i in range(UNACKED):
            name = names[i % QUEUES]
            payload = json.dumps([{"body": "x" * 200}, name, name])
            pipe.hset("unacked", f"tag-{i}", payload)
            pipe.zadd("unacked_index", {f"tag-{i}": now - (4000 if i % 10 == 0 else 5)})
        pipe.execute()
        probe = RedisCapacityProbe(parse_broker_url(claim.url), timeout=2.0)
        started = time.perf_counter()
        cap = probe.poll(names)
        first = time.perf_counter() - started
        first_trips = probe.round_trips
        for _ in range(UNACKED // UNACKED_READS_PER_POLL):  # learn every delivery tag's queue
            probe.poll(names)
        warm_trips = probe.round_trips
        times = []
        for _ in range(RUNS):
            started = time.perf_counter()
            cap = probe.poll(names)
            times.append(time.perf_counter() - started)
        steady_trips = (probe.round_trips - warm_trips) / RUNS
        probe.close()
        print(f"redis capacity poll, {QUEUES} queues x 4 priority keys, {UNACKED} unacked:")
        print(
            f"  first poll   {first * 1000:7.1f} ms  {first_trips} round trips "
            f"(reads {UNACKED_READS_PER_POLL} unacked payloads)"
        )
        print(
            f"  steady poll  {statistics.median(times) * 1000:7.1f} ms median of {RUNS}  "
            f"{steady_trips:.2f} round trips each (every tag known)"
        )
        print(f"  counted unacked {cap.unacked}, overdue {cap.overdue}")


def rabbitmqctl(*args: str) -> str:
    """Run rabbitmqctl quietly."""
    done = subprocess.run(
        ["rabbitmqctl", "-q", *args], check=True, capture_output=True, text=True, timeout=60
    )
    return done.stdout.strip()


def wait(condition: object, since: float, limit: float = 10.0) -> float:
    """Seconds from ``since`` until ``condition()`` holds."""
    while not condition():  # type: ignore[operator]
        if time.monotonic() - since > limit:
            return float("nan")
        time.sleep(0.005)
    return time.monotonic() - since


def rabbit_alarm_latency() -> None:
    """Seconds from rabbitmqctl returning to the watcher's blocked/unblocked, TRIALS times."""
    if shutil.which("rabbitmqctl") is None:
        print("rabbitmq alarm latency: skipped (no rabbitmqctl)")
        return
    previous = rabbitmqctl("eval", "vm_memory_monitor:get_vm_memory_high_watermark().")
    restore = [previous] if previous.replace(".", "").isdigit() else None
    if restore is None:
        print(f"rabbitmq alarm latency: skipped (watermark {previous!r} not restorable here)")
        return
    watcher = BlockedWatcher(parse_broker_url("amqp://guest:guest@127.0.0.1:5672//"))
    watcher.start()
    seen, cleared = [], []
    try:
        wait(lambda: watcher.canaries > 0, time.monotonic())
        for _ in range(TRIALS):
            rabbitmqctl("set_vm_memory_high_watermark", "0.0000001")
            seen.append(wait(lambda: watcher.blocked, time.monotonic()))
            rabbitmqctl("set_vm_memory_high_watermark", *restore)
            cleared.append(wait(lambda: watcher.blocked is None, time.monotonic()))
    finally:
        rabbitmqctl("set_vm_memory_high_watermark", *restore)
        watcher.stop()
    print(f"rabbitmq alarm, watcher canary every {watcher.canary_every}s, {TRIALS} trials:")
    print("  blocked seen after   " + "  ".join(f"{s:.3f}s" for s in seen))
    print("  unblocked seen after " + "  ".join(f"{s:.3f}s" for s in cleared))
    print(f"  canaries published: {watcher.canaries}")


if __name__ == "__main__":
    redis_poll_cost()
    rabbit_alarm_latency()
