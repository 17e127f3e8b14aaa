"""Benchmark: depth of 1,000 Redis queues x 4 priority steps, pipelined probe vs one LLEN per key.

Run from the repository root: ``python tests/benchmarks/bench_depth_poll.py``. It claims an empty
Redis database (>= 1) the way tests/conftest.py does and deletes what it wrote afterwards.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from console.broker.depth import RedisDepthProbe, redis_queue_keys
from console.broker.urls import parse_broker_url
from tests.redis_claim import claimed_db

QUEUES = 1000
RUNS = 5


def median_time(func: Callable[[], int]) -> tuple[float, int]:
    """Median wall time of RUNS calls, and what the last call returned."""
    times, result = [], 0
    for _ in range(RUNS):
        started = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def main() -> None:
    """Seed, time both ways, print the table, clean up."""
    with claimed_db(ttl=1800) as claim:
        client, db = claim.client, claim.db
        names = [f"bench-{i:04d}" for i in range(QUEUES)]
        keys = [key for name in names for key in redis_queue_keys(name)]
        pipe = client.pipeline(transaction=False)
        for index, key in enumerate(keys):
            pipe.rpush(key, *[b"m"] * (1 + index % 3))
        pipe.execute()
        expected = sum(1 + index % 3 for index in range(len(keys)))

        probe = RedisDepthProbe(parse_broker_url(claim.url))

        def pipelined() -> int:
            return sum(d.ready or 0 for d in probe.poll(names).values())

        old_trips = 0

        def one_llen_per_key() -> int:
            nonlocal old_trips
            total = 0
            for key in keys:
                total += int(client.llen(key))
                old_trips += 1
            return total

        pipelined()  # connect outside the timing
        probe.round_trips = 0
        new_time, new_total = median_time(pipelined)
        old_time, old_total = median_time(one_llen_per_key)
        assert new_total == old_total == expected, (new_total, old_total, expected)
        probe.close()

        rows = [
            ("pipelined probe", new_time, probe.round_trips // RUNS),
            ("one LLEN per key", old_time, old_trips // RUNS),
        ]
        print(
            f"{QUEUES} queues x 4 priority steps = {len(keys)} keys, {expected} messages, db {db}"
        )
        print(f"{'method':<18} {'median ms':>10} {'round trips':>12}")
        for label, seconds, trips in rows:
            print(f"{label:<18} {seconds * 1000:>10.1f} {trips:>12}")
        print(f"speed-up: {old_time / new_time:.1f}x, round trips: {old_trips // RUNS}:1")


if __name__ == "__main__":
    main()
