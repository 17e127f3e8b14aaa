"""Benchmark: three crons on one broker, with and without coordination, and takeover times.

Run from the repository root:
``python tests/benchmarks/bench_cron_takeover.py [--kills N] [--broker redis|rabbitmq|both]``
(about 70 s per broker with the default 3 kills).
For Redis it claims an empty database of 127.0.0.1:6379; for RabbitMQ it creates a private
vhost on 127.0.0.1:5672 (guest) and deletes it at the end (skipped when rabbitmqctl is missing).
Prints, per broker: the ticks three uncoordinated crons send in 15 s of a one-second schedule;
then, coordinated, the takeover time after each SIGKILL of the sender, after a 10 s SIGSTOP
and after a warm stop, and the duplicate and skipped slots over the whole run.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from kombu import Connection

from tests.cron_support.cluster import CronCluster, Sent
from tests.redis_claim import claimed_db


@contextlib.contextmanager
def rabbit_vhost() -> Iterator[str | None]:
    """A private vhost URL, or None without RabbitMQ."""
    if shutil.which("rabbitmqctl") is None:
        yield None
        return
    vhost = f"sc-bench-{uuid.uuid4().hex[:8]}"
    ctl = ["rabbitmqctl", "-q"]
    subprocess.run([*ctl, "add_vhost", vhost], check=True, capture_output=True, timeout=60)
    try:
        perms = [*ctl, "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"]
        subprocess.run(perms, check=True, capture_output=True, timeout=60)
        yield f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
    finally:
        subprocess.run([*ctl, "delete_vhost", vhost], capture_output=True, timeout=60)


def drain(cluster: CronCluster) -> int:
    """Take every message off the cluster's queue; how many there were."""
    count = 0
    with Connection(cluster.broker_url) as conn, conn.SimpleQueue(cluster.queue_object()) as q:
        while True:
            try:
                q.get_nowait().ack()
            except q.Empty:
                return count
            count += 1


def uncoordinated(url: str, root: Path, seconds: float = 15.0) -> int:
    """Messages three uncoordinated crons send in ``seconds`` of a one-second schedule."""
    conf = root / "off.conf.py"
    conf.write_text("CONSOLE_CRON_COORDINATION = False\n")
    cluster = CronCluster(url, f"bench-off-{uuid.uuid4().hex[:6]}", root / "off")
    cluster.root.mkdir()
    cluster.env["SENTRY_CONF"] = str(conf)
    cluster.declare()
    try:
        for name in ("a", "b", "c"):
            cluster.add(name)
        deadline = time.monotonic() + 60
        while not all("beat: Starting" in c.log.read_text(errors="replace") for c in cluster.crons):
            assert time.monotonic() < deadline, "the crons did not start"
            time.sleep(0.1)
        time.sleep(2)  # past beat's first check
        drain(cluster)
        time.sleep(seconds)
        return drain(cluster)
    finally:
        cluster.stop_all()


def coordinated(url: str, root: Path, kills: int) -> dict[str, object]:
    """Takeover times and slot accounting for one coordinated run."""
    cluster = CronCluster(url, f"bench-on-{uuid.uuid4().hex[:6]}", root / "on")
    cluster.root.mkdir()
    cluster.declare()
    kill_times: list[float] = []
    try:
        for name in ("a", "b", "c"):
            cluster.add(name)
        leader = cluster.wait_for_leader(timeout=60)
        time.sleep(3)
        for _ in range(kills):
            at = time.time()
            cluster.signal(leader, signal.SIGKILL)
            new = cluster.wait_for_leader(exclude=leader, timeout=30)
            kill_times.append((new.role_since() or at) - at)
            cluster.start(leader)
            leader = new
            time.sleep(3)
        at = time.time()
        cluster.signal(leader, signal.SIGSTOP)
        new = cluster.wait_for_leader(exclude=leader, timeout=30)
        freeze = (new.role_since() or at) - at
        time.sleep(max(0.0, at + 10 - time.time()))
        cluster.signal(leader, signal.SIGCONT)
        time.sleep(3)
        leader = cluster.wait_for_leader(timeout=30)
        at = time.time()
        assert leader.proc is not None
        leader.proc.send_signal(signal.SIGTERM)
        new = cluster.wait_for_leader(exclude=leader, timeout=30)
        warm = (new.role_since() or at) - at
        time.sleep(3)
    finally:
        cluster.stop_all()
    sent: list[Sent] = cluster.sent()
    slots = [s.slot for s in sent]
    chained = sum(1 for a, b in itertools.pairwise(sent) if b.after == a.slot)
    return {
        "kill": kill_times,
        "freeze": freeze,
        "warm": warm,
        "messages": len(sent),
        "duplicates": len(slots) - len(set(slots)),
        "breaks": len(sent) - 1 - chained,
        "covered": (slots[-1] - sent[0].after) if sent else 0,
    }


def report(name: str, url: str, kills: int) -> None:
    """Run both halves on one broker and print them."""
    with tempfile.TemporaryDirectory(prefix="bench-cron-") as tmp:
        root = Path(tmp)
        seconds = 15
        off = uncoordinated(url, root, seconds)
        on = coordinated(url, root, kills)
    kill = on["kill"]
    assert isinstance(kill, list)
    print(f"{name}: uncoordinated, 3 crons, {seconds} s of a 1 s schedule: {off} messages")
    print(
        f"{name}: coordinated: takeover after SIGKILL median {statistics.median(kill):.2f} s, "
        f"max {max(kill):.2f} s ({len(kill)} kills); after a 10 s SIGSTOP {on['freeze']:.2f} s; "
        f"after a warm stop {on['warm']:.2f} s"
    )
    print(
        f"{name}: coordinated: {on['messages']} messages for {on['covered']:.0f} slots, "
        f"{on['duplicates']} slots sent twice, {on['breaks']} breaks in the slot chain"
    )


def main() -> None:
    """Redis, then RabbitMQ."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--broker", choices=("redis", "rabbitmq", "both"), default="both")
    args = parser.parse_args()
    if args.broker in ("redis", "both"):
        with claimed_db(ttl=1800) as claim:
            report("redis", claim.url, args.kills)
    if args.broker == "redis":
        return
    with rabbit_vhost() as url:
        if url is None:
            print("rabbitmq: skipped (rabbitmqctl not found)")
        else:
            report("rabbitmq", url, args.kills)


if __name__ == "__main__":
    main()
