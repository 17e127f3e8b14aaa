"""What each attached screen costs the server: its CPU with 1 subscribed client against 10.

Run: ``python tests/benchmarks/bench_server_clients.py [--seconds 30] [--rate 0] [--profile]``.
Starts ``sentry-console serve`` supervising nothing (a group of 0 processes, no cron) on an
empty database claimed from the Redis at 127.0.0.1:6379, attaches N clients that subscribe to
snapshots as a TUI does (``RemoteSource``, in this process; only the server is measured), and
prints the server's CPU (% of a core) and RSS with 1 and with 10 clients, alternating, idle or
under an event replay (``--rate`` tasks/s, 3 events each). Deletes what it created.

``--profile`` (needs py-spy, in the ``bench`` extra) samples every thread of the server during
the last measurement and prints where its busy time goes, by part (event reading and decoding,
state update, snapshot building and encoding, socket writes, the rest) and by function.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import psutil

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))

from console.server.client import RemoteSource, ServerClient
from console.server.protocol import socket_path
from console.settings import Settings
from tests.benchmarks.bench_event_ingest import publish
from tests.redis_claim import claimed_db
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]


def attach(state: Path, settings: Settings) -> tuple[RemoteSource, threading.Event]:
    """A subscribed client that takes every snapshot, as a TUI's poll loop does."""
    client = ServerClient(state)
    client.hello(client="bench")
    source = RemoteSource(client, settings, read_only=True)
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set() and not client.closed:
            try:
                source.poll()
            except Exception:
                return

    threading.Thread(target=loop, daemon=True).start()
    return source, stop


def measure(proc: psutil.Process, seconds: float, rate: int, db: object) -> tuple[float, float]:
    """The server's CPU % of a core over ``seconds`` (with a replay when ``rate``) and RSS MB."""
    before, began = proc.cpu_times(), time.monotonic()
    if rate:
        publish(db.client, db.db, int(rate * 3 * seconds), rate)  # type: ignore[attr-defined]
    else:
        time.sleep(seconds)  # idle: nothing to wait for but the clock
    after, ended = proc.cpu_times(), time.monotonic()
    used = (after.user + after.system) - (before.user + before.system)
    return 100 * used / (ended - began), proc.memory_info().rss / 1e6


PARTS = (  # the first whose marker is in a sample's stack names its part
    ("socket writes", ("connection.py", "sendall")),
    ("snapshot encoding", ("protocol.py", "encode (json", "JSONEncoder")),
    ("snapshot building (poll)", ("runtime.py", "ConsoleRuntime.poll")),
    ("state update", ("cluster/state.py",)),
    ("event decoding", ("decode_batch", "_flush", "decode (console/cluster")),
    ("event reading (RESP)", ("parse_messages", "parse_frames", "RedisEventStream.read")),
)


def profile(pid: int, seconds: float) -> subprocess.Popen[bytes] | None:
    """Start py-spy sampling every thread of ``pid`` (None when py-spy is not installed)."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        print("  (--profile: py-spy is not installed; pip install '.[bench]')")
        return None
    out = Path(tempfile.gettempdir()) / f"bench-clients-{pid}.txt"
    argv = [spy, "record", "-p", str(pid), "-d", str(int(seconds)), "-r", "200", "-f", "raw"]
    return subprocess.Popen([*argv, "-o", str(out), "--nonblocking"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip


def summary(pid: int) -> None:
    """Print the busy samples of the profile of ``pid`` by part and by function."""
    out = Path(tempfile.gettempdir()) / f"bench-clients-{pid}.txt"
    if not out.exists():
        return
    parts: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if any(idle in frames[-1] for idle in ("wait (threading", "(selectors", "acquire")):
            continue  # a thread waiting is not busy
        n = int(count)
        total += n
        part = next((name for name, marks in PARTS if any(m in stack for m in marks)), "rest")
        parts[part] += n
        for frame in set(frames):
            inclusive[frame] += n
    out.unlink()
    print(f"profile of the server's busy time ({total} samples at 200/s):")
    for part, n in parts.most_common():
        print(f"  {100 * n / max(total, 1):5.1f}%  {part}")
    print("  by function (inclusive), console code first:")
    ours = [(f, n) for f, n in inclusive.most_common() if "console/" in f]
    for frame, n in ours[:15]:
        print(f"  {100 * n / max(total, 1):5.1f}%  {frame}")


def main() -> None:
    """Start the server, measure 1 and 10 clients in turn, print the figures."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="per measurement")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--rate", type=int, default=0, help="replay tasks/s (0: idle)")
    parser.add_argument("--profile", action="store_true", help="py-spy the last measurement")
    opts = parser.parse_args()
    with claimed_db() as db, tempfile.TemporaryDirectory(prefix="bench-clients-") as tmp:
        conf = Path(tmp) / "sentry.conf.py"
        conf.write_text(
            'CONSOLE_WORKERS = [{"name": "worker", "processes": 0}]\nCONSOLE_CRON = False\n'
        )
        state = Path(tmp) / "state"
        env = dict(os.environ, SENTRY_CONF=str(conf), SENTRY_CONSOLE_STATE_DIR=str(state))
        env |= {"SENTRY_BROKER_URL": db.url, "PYTHONPATH": str(ROOT)}
        server = subprocess.Popen(
            [sys.executable, "-m", "console", "serve"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            wait_until("the server's socket", lambda: socket_path(state).exists(), 60)
            settings = Settings(broker=None, broker_source="bench", state_dir=state)
            proc = psutil.Process(server.pid)
            clients = [attach(state, settings)]
            results: dict[int, list[tuple[float, float]]] = {1: [], 10: []}
            spy = None
            for round_ in range(opts.rounds):
                for count in (1, 10):
                    while len(clients) < count:
                        clients.append(attach(state, settings))
                    while len(clients) > count:
                        source, stop = clients.pop()
                        stop.set()
                        source.detach()
                    if opts.profile and round_ == opts.rounds - 1 and count == 1:
                        spy = profile(server.pid, opts.seconds)
                    results[count].append(measure(proc, opts.seconds, opts.rate, db))
                    if spy is not None:
                        spy.wait(opts.seconds + 30)
                        spy = None
                    cpu, rss = results[count][-1]
                    print(f"  {count:2d} client(s): server cpu {cpu:.2f}% rss {rss:.0f} MB")
            for source, stop in clients:
                stop.set()
                source.detach()
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(60)
        db.clear()
    one = sorted(c for c, _ in results[1])[len(results[1]) // 2]
    ten = sorted(c for c, _ in results[10])[len(results[10]) // 2]
    load = f"{opts.rate:,} tasks/s" if opts.rate else "idle"
    print(f"server CPU, {load}: 1 client {one:.2f}%, 10 clients {ten:.2f}%: {ten / one:.2f}x"
          f" (goal <= 2x)")  # fmt: skip
    if opts.profile:
        summary(server.pid)


if __name__ == "__main__":
    main()
