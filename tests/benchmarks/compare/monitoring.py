"""Scenarios 1-3: idle cost, cost under event replays, start-up; against Flower, celery events."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import psutil

from tests.benchmarks.bench_event_ingest import publish
from tests.benchmarks.compare.procs import Launcher, cpu_seconds, rss_mb
from tests.benchmarks.compare.report import Stat
from tests.benchmarks.compare.tools import CeleryEvents, ConsoleUnderTest, Flower, start_workers
from tests.redis_claim import ClaimedDb
from tests.waiting import wait_until


@dataclass
class Plan:
    """Durations and repetitions (``--quick`` shrinks them)."""

    idle_seconds: float = 60.0
    idle_runs: int = 2
    replay_seconds: float = 30.0
    replay_runs: int = 2
    rates: tuple[int, ...] = (1_000, 2_500, 5_000)
    soak_tasks: int = 1_000_000
    startup_runs: int = 3
    restart_runs: int = 5
    overhead_runs: int = 4
    overhead_tasks: int = 8_000


@dataclass
class Results:
    """Every measured figure, by name."""

    stats: dict[str, Stat] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, name: str, value: float) -> None:
        """Record one measurement of figure ``name``."""
        self.stats.setdefault(name, Stat()).add(value)

    def get(self, name: str) -> Stat:
        """The measurements of ``name`` (empty when none)."""
        return self.stats.get(name, Stat())


def say(text: str) -> None:
    """Progress on stderr-like stdout, flushed."""
    print(f"  {time.strftime('%H:%M:%S')} {text}", flush=True)


def pin(pid: int, cpu: int | None) -> None:
    """Keep a process's threads on one core (None: every core), when there is more than one."""
    cores = set(range(os.cpu_count() or 1))
    if len(cores) > 1:
        with contextlib.suppress(psutil.Error, OSError):
            for thread in psutil.Process(pid).threads():
                os.sched_setaffinity(thread.id, cores if cpu is None else {cpu})


def idle(plan: Plan, launcher: Launcher, db: ClaimedDb, tmp: Path, out: Results) -> None:
    """Console supervising 4 workers on 20 queues, celery events and Flower on the same cluster."""
    say(f"idle: console with 4 workers, then celery events and Flower ({plan.idle_runs} runs)")
    console = ConsoleUnderTest(launcher, db.url, tmp / "idle", workers=4, expect=4, refresh=1.0)
    wait_until("the console's 4 workers", lambda: console.first_frame() > 0, 90)
    names = [f"cw-{n}@{os.uname().nodename}" for n in range(1, 5)]
    events = CeleryEvents(launcher, db.url)
    flower = Flower(launcher, db.url, tmp)
    wait_until("Flower listing the workers", lambda: flower.lists_workers(names), 60, step=0.5)
    time.sleep(3)  # let every tool finish starting up
    tools = {"console": console.pid, "celery events": events.pid, "flower": flower.pid}
    for run in range(plan.idle_runs):
        before = {name: cpu_seconds(pid) for name, pid in tools.items()}
        began = time.monotonic()
        time.sleep(plan.idle_seconds)
        took = time.monotonic() - began
        for name, pid in tools.items():
            out.add(f"idle cpu {name}", 100 * (cpu_seconds(pid) - before[name]) / took)
            out.add(f"idle rss {name}", rss_mb(pid))
        say(f"idle run {run + 1}: " + ", ".join(
            f"{n} {out.get(f'idle cpu {n}').values[-1]:.2f}%" for n in tools))  # fmt: skip
    for tool in (flower, events, console):
        tool.stop()


SOAK_RATE = 7_500
"""Tasks/s of the replays that take the console on to 1,000,000 tasks (only its RSS is kept)."""

CATCH_UP_LIMIT = 4.0
"""Seconds a consumer gets after a replay's end to catch up; beyond it the lag is NaN."""


def _catch_up(count: Callable[[], int], target: int, ended: float, stall: float) -> float:
    """Seconds after ``ended`` until ``count()`` reaches ``target``; NaN if it stalls short."""
    last, changed = -1, time.monotonic()
    while time.monotonic() - ended < CATCH_UP_LIMIT:
        try:
            seen = count()
        except OSError:
            seen = last
        now = time.monotonic()
        if seen >= target:
            return now - ended
        if seen != last:
            last, changed = seen, now
        elif now - changed > stall:
            return float("nan")
        time.sleep(0.02)
    return float("nan")


def _events(consumer: ConsoleUnderTest | Flower) -> int:
    """The consumer's event count; a busy Flower may take a few tries to answer."""
    for _ in range(5):
        with contextlib.suppress(OSError):
            return consumer.events()
    return consumer.events()


def _settle(count: Callable[[], int], quiet: float, limit: float) -> None:
    """Wait until ``count()`` has not changed for ``quiet`` seconds (at most ``limit``)."""
    last, changed, began = -1, time.monotonic(), time.monotonic()
    while time.monotonic() - began < limit:
        with contextlib.suppress(OSError):
            seen = count()
            if seen != last:
                last, changed = seen, time.monotonic()
        if time.monotonic() - changed >= quiet:
            return
        time.sleep(0.1)


class Replay:
    """One paced replay in its own publisher process (``publisher``), pinned to core 0."""

    first = 0  # task numbers run on across replays, so every task id is new

    def __init__(self, launcher: Launcher, db: ClaimedDb, rate: int, seconds: float) -> None:
        self.rate = rate
        self.tasks = int(rate * seconds)
        argv = [sys.executable, "-m", "tests.benchmarks.compare.publisher", "--db", str(db.db)]
        argv += ["--rate", str(rate), "--seconds", str(seconds), "--first", str(Replay.first)]
        argv += ["--cpu", "0"]
        Replay.first += self.tasks
        self.launcher = launcher
        self.proc = launcher.start_piped(argv, launcher.env(db.url))
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the publisher did not get ready")

    def run(self) -> dict[str, float]:
        """Start the replay, wait for its end: sent, began, ended (monotonic), rate (tasks/s)."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        self.launcher.stop(self.proc)
        if not line:
            raise RuntimeError("the publisher died during the replay")
        return dict(json.loads(line))


def _replay(
    launcher: Launcher,
    consumer: ConsoleUnderTest | Flower,
    db: ClaimedDb,
    rate: int,
    seconds: float,
) -> dict:
    """Publish one replay to ``consumer`` and measure it."""
    replay = Replay(launcher, db, rate, seconds)
    events = replay.tasks * 3
    before = _events(consumer)
    cpu0 = cpu_seconds(consumer.pid)
    got = replay.run()
    began, ended = got["began"], got["ended"]
    lag = _catch_up(lambda: consumer.events() - before, events, ended, stall=3.0)
    settled = time.monotonic()
    seen = _events(consumer) - before
    cpu = cpu_seconds(consumer.pid) - cpu0
    return {
        "sent": int(got["sent"]),
        "seen": seen,
        "lag": lag,
        "cpu": 100 * cpu / (settled - began),
        "rss": rss_mb(consumer.pid),
        "rate": got["rate"],
    }


def _consumer(kind: str, launcher: Launcher, db: ClaimedDb, tmp: Path) -> ConsoleUnderTest | Flower:
    """A started consumer, subscribed to the events, pinned to core 1."""
    consumer: ConsoleUnderTest | Flower
    if kind == "console":
        console = ConsoleUnderTest(launcher, db.url, tmp / "load", count_events=True)
        wait_until("the console subscribed", lambda: _subscribed(console, db), 60)
        consumer = console
    else:
        flower = Flower(launcher, db.url, tmp)
        wait_until("Flower up", lambda: _answers(flower) and _subscribed(flower, db), 60)
        consumer = flower
    pin(consumer.pid, 1)
    time.sleep(1)
    return consumer


def load(plan: Plan, launcher: Launcher, db: ClaimedDb, tmp: Path, out: Results) -> None:
    """Replays at each rate to one console, then the same replays to Flower.

    Flower is started afresh for each replay: one that fell behind or lost its subscription in
    the last replay would otherwise carry that backlog into the next one.
    """
    tasks_total = 0
    pin(os.getpid(), 0)
    for kind in ("console", "flower"):
        db.clear()
        say(f"load: {kind}, {plan.replay_runs} x {plan.rates} tasks/s for {plan.replay_seconds}s")
        consumer = _consumer(kind, launcher, db, tmp) if kind == "console" else None
        for run in range(plan.replay_runs):
            for rate in plan.rates:
                fresh = consumer or _consumer(kind, launcher, db, tmp)
                got = _replay(launcher, fresh, db, rate, plan.replay_seconds)
                if fresh is not consumer:
                    fresh.stop()
                else:  # the next replay starts on an idle console
                    _settle(fresh.events, quiet=1.0, limit=10.0)
                tasks_total += got["sent"] // 3 if kind == "console" else 0
                for key in ("lag", "cpu", "rss"):
                    out.add(f"load {key} {rate} {kind}", got[key])
                out.add(f"load seen {rate} {kind}", got["seen"] / got["sent"])
                out.add(f"load sent rate {rate} {kind}", got["rate"])
                say(f"{kind} run {run + 1} {rate}/s: seen {got['seen']}/{got['sent']} "
                    f"lag {got['lag']:.2f}s cpu {got['cpu']:.1f}% rss {got['rss']:.0f}MB "
                    f"(published {got['rate']:.0f} tasks/s)")  # fmt: skip
        if consumer is not None:
            remaining = plan.soak_tasks - tasks_total
            if remaining > 0:
                say(f"load: {remaining:,} more tasks to the console at {SOAK_RATE:,}/s")
                while remaining > 0:  # in 30 s replays, so the publisher's memory stays bounded
                    tasks = min(remaining, 150_000)
                    _replay(launcher, consumer, db, SOAK_RATE, tasks / SOAK_RATE)
                    tasks_total += tasks
                    remaining -= tasks
            out.add("load soak tasks", tasks_total)
            out.add("load soak rss console", rss_mb(consumer.pid))
            consumer.stop()
    pin(os.getpid(), None)


def _subscribed(consumer: ConsoleUnderTest | Flower, db: ClaimedDb) -> bool:
    """Publish one probe task; True once the consumer counted its events."""
    try:
        before = consumer.events()
    except OSError:
        return False
    publish(db.client, db.db, 3, 100)
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if consumer.events() > before:
                return True
        time.sleep(0.05)
    return False


def _answers(flower: Flower) -> bool:
    try:
        flower.get("/healthcheck", timeout=1)
    except OSError:
        return False
    return True


def startup(plan: Plan, launcher: Launcher, db: ClaimedDb, tmp: Path, out: Results) -> None:
    """Launch to the first view listing 4 running workers: console frame vs Flower page."""
    db.clear()
    say(f"start-up: 4 workers by hand, then {plan.startup_runs} launches of each tool")
    procs, names = start_workers(launcher, db.url, tmp, 4, prefix="sw")
    from tests.benchmarks.compare.processes import ping

    wait_until("4 workers answering", lambda: all(ping(db.url, n) for n in names), 90)
    for run in range(plan.startup_runs):
        console = ConsoleUnderTest(launcher, db.url, tmp / f"start{run}", expect=4)
        wait_until("the console's first frame", console.drawn, 60)
        out.add("startup console", console.first_frame() - console.started)
        console.stop()
        flower = Flower(launcher, db.url, tmp)
        wait_until("Flower's workers", partial(flower.lists_workers, names), 60, step=0.05)
        out.add("startup flower", time.time() - flower.started)
        flower.stop()
        say(f"start-up run {run + 1}: console {out.get('startup console').values[-1]:.2f}s, "
            f"Flower {out.get('startup flower').values[-1]:.2f}s")  # fmt: skip
    for proc in procs:
        launcher.stop(proc, grace=10)
