"""The supervisor server and its attached TUIs beside the old in-process console, in one run.

Run: ``python tests/benchmarks/bench_server.py [--quick]`` (about 6 minutes; ``--quick`` about 2).
Claims an empty database of the Redis at 127.0.0.1:6379 and measures, with 2 supervised workers:

1. attach latency: ``sentry-console`` (the TUI, on a pseudo-terminal) from launch to the first
   frame that shows the server's data, with the server already running and when the TUI has to
   start it (the programs' own start-up not awaited);
2. idle CPU (% of a core, workers excluded) of the in-process console (``console_proc``: runtime
   and app in one process, as before the server) against server + 1 TUI, server + 3 TUIs and the
   server alone, with the commands per second each sends to the claimed database (Redis
   ``MONITOR``, attributed by client port) and its broker connections;
3. CPU under a 5,000 tasks/s event replay (15,000 events/s): in-process console vs server + 1 TUI,
   both pinned to core 1, the publisher to core 0; CPU counted from the replay's start to 1 s
   after its end. The in-process console counts events with ``console_proc``'s 50 ms probe
   thread (its only way to report them); the server's count comes from a short-lived client
   (``--rate`` sets another rate);
4. resident memory, idle and after the replay: the in-process console against the server and
   its TUI, each and summed.

The table's title says how long a plain Python loop takes here: the ratios compare within one
run, the absolute % of a core only between machines of like speed.

Prints one table (median [min-max]) and deletes what it created. Every process it starts (and
every server a TUI starts) is killed with its process group when it ends, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import psutil

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))

from console.server.protocol import socket_path
from tests.benchmarks.bench_event_ingest import publish
from tests.benchmarks.compare.attached import (
    BROKER_UP,
    DATA_FRAME,
    BrokerCount,
    CpuMeter,
    ServerLauncher,
    become_subreaper,
    console_argv,
    console_env,
    cpu_of,
    descendants,
    reap,
    server_data,
    server_pid,
    stop_server,
    wait_online,
    write_conf,
)
from tests.benchmarks.compare.monitoring import Replay, Results, _subscribed, pin, say
from tests.benchmarks.compare.procs import ROOT
from tests.benchmarks.compare.report import Row, Stat, render
from tests.benchmarks.compare.tools import ConsoleUnderTest
from tests.redis_claim import ClaimedDb, claimed_db
from tests.waiting import wait_until

PATTERNS = {"data": DATA_FRAME, "up": BROKER_UP}
WORKERS = 2


@dataclass
class Plan:
    """Repetitions and durations (``--quick`` shrinks them)."""

    attach_runs: int = 5
    start_runs: int = 4
    idle_seconds: float = 30.0
    idle_slices: int = 3
    replay_seconds: float = 12.0
    replay_runs: int = 2
    rate: int = 5_000


QUICK = Plan(attach_runs=3, start_runs=3, idle_seconds=15.0, replay_seconds=6.0)


class Bench:
    """The run's shared parts: launcher, claimed db, work dir, results, plan."""

    def __init__(self, launcher: ServerLauncher, db: ClaimedDb, tmp: Path, plan: Plan) -> None:
        self.launcher = launcher
        self.db = db
        self.tmp = tmp
        self.plan = plan
        self.out = Results()
        self.conf = write_conf(tmp / "sentry.conf.py", WORKERS)

    def env(self, state_dir: Path) -> dict[str, str]:
        """The environment of ``serve`` and the TUI for ``state_dir``."""
        return console_env(self.launcher, self.db.url, state_dir, self.conf)

    def tui(self, state_dir: Path, key: str | None = None) -> subprocess.Popen[bytes]:
        """Start a TUI and wait for its first data frame (recorded as ``key`` when given)."""
        proc, screen, began = self.launcher.start_watched(
            console_argv(), self.env(state_dir), PATTERNS
        )
        wait_until(
            "the TUI's first frame with data",
            lambda: "data" in screen.seen,
            60,
            seen=lambda: f"the screen shows:\n{screen.text()}",
        )
        if key:
            self.out.add(f"attach {key}", screen.seen["data"] - began)
            try:
                wait_until("broker shown connected", lambda: "up" in screen.seen, 10)
                self.out.add(f"attach up {key}", screen.seen["up"] - began)
            except AssertionError:  # not shown within 10 s: no figure
                pass
        return proc

    def idle(self, key: str, measured: list[int], who: dict[str, list[int]]) -> None:
        """CPU of ``measured`` in slices of one idle window; broker commands of ``who``."""
        count = BrokerCount(self.db.db, who)
        parts = self.plan.idle_slices
        for _ in range(parts):
            meter, first = CpuMeter(measured), CpuMeter(measured[:1])
            time.sleep(self.plan.idle_seconds / parts)
            total, own = meter.percent(), first.percent()
            self.out.add(f"idle cpu {key}", total)
            if len(measured) > 1:
                self.out.add(f"idle cpu {key} clients", total - own)
        rates = count.stop()
        self.rss(f"idle rss {key}", measured)
        console = [name for name in who if name != "workers"]
        self.out.add(f"broker cmds {key}", sum(rates[name] for name in console))
        self.out.add(f"broker cmds db {key}", sum(rates.values()))
        for name in console:
            self.out.add(f"broker conns {key} {name}", count.connections.get(name, 0))
        cpu = self.out.get(f"idle cpu {key}")
        say(f"idle {key}: cpu {cpu.show('.2f')}%, broker {sum(rates[n] for n in console):.1f} "
            f"cmds/s from the console ({rates['workers']:.1f} workers, {rates['other']:.1f} "
            f"other), connections " + ", ".join(
                f"{n} {count.connections.get(n, 0)}" for n in console))  # fmt: skip

    def rss(self, key: str, measured: list[int]) -> None:
        """Resident memory of ``measured`` summed, and of the first (the server) and the rest."""
        sizes = [rss_mb(pid) for pid in measured]
        self.out.add(key, sum(sizes))
        if len(sizes) > 1:
            self.out.add(f"{key} first", sizes[0])
            self.out.add(f"{key} rest", sum(sizes[1:]) / (len(sizes) - 1))

    def replay(self, key: str, measured: list[int], events: Callable[[], int]) -> None:
        """One paced replay at the plan's rate; CPU of ``measured`` until ``TAIL`` s after it."""
        replay = Replay(self.launcher, self.db, self.plan.rate, self.plan.replay_seconds)
        before = events()
        cpu0 = cpu_of(measured)
        got = replay.run()
        settled = got["ended"] + TAIL
        time.sleep(max(settled - time.monotonic(), 0))
        cpu = cpu_of(measured)
        sent = int(got["sent"])
        deadline = time.monotonic() + 5.0  # a server's snapshot is up to one refresh old
        seen = events() - before
        while seen < sent and time.monotonic() < deadline:
            time.sleep(0.25)
            seen = events() - before
        self.out.add(f"load cpu {key}", 100 * (cpu - cpu0) / (settled - got["began"]))
        self.rss(f"load rss {key}", measured)
        self.out.add(f"load seen {key}", seen / sent)
        self.out.add(f"load rate {key}", got["rate"])
        say(f"replay {key}: cpu {self.out.get(f'load cpu {key}').values[-1]:.1f}% of a core, "
            f"seen {seen}/{sent}, published {got['rate']:.0f} tasks/s")  # fmt: skip


TAIL = 1.0
"""Seconds after a replay's last event that still count toward its CPU (the catch-up)."""


def rss_mb(pid: int) -> float:
    """A process's resident memory in MB (0 once it is gone)."""
    try:
        return float(psutil.Process(pid).memory_info().rss) / 1e6
    except psutil.Error:
        return 0.0


def server_events(state_dir: Path) -> Callable[[], int]:
    """The server's event count, as its newest snapshot says."""
    return lambda: server_data(state_dir).events_received


def server_subscribed(bench: Bench, state_dir: Path) -> bool:
    """Publish one probe task; True once the server's snapshot counted its events."""
    before = server_data(state_dir).events_received
    publish(bench.db.client, bench.db.db, 3, 100)
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        if server_data(state_dir).events_received > before:
            return True
        time.sleep(0.2)
    return False


def served(bench: Bench) -> None:
    """One ``serve``: attach latency, idle alone / with 1 and 3 TUIs, then the replays."""
    plan, launcher = bench.plan, bench.launcher
    state = bench.tmp / "served"
    say(f"server: sentry-console serve with {WORKERS} workers")
    proc = launcher.start(console_argv("serve"), bench.env(state), log=bench.tmp / "serve.log")
    wait_until("its socket", lambda: socket_path(state).exists() or proc.poll() is not None, 60)
    if proc.poll() is not None:
        raise RuntimeError(f"serve exited with {proc.returncode}; see {bench.tmp / 'serve.log'}")
    wait_online(state, WORKERS, 90)
    pid = server_pid(state)
    workers = descendants(pid)
    say(f"server pid {pid} up, workers online; {plan.attach_runs} attaches")
    for run in range(plan.attach_runs):
        launcher.stop(bench.tui(state, "running"), grace=5)
        say(f"attach run {run + 1}: {bench.out.get('attach running').values[-1]:.2f}s")
    time.sleep(2)
    bench.idle("server alone", [pid], {"server": [pid], "workers": workers})
    tuis = [bench.tui(state)]
    time.sleep(3)
    who = {"server": [pid], "tuis": [t.pid for t in tuis], "workers": workers}
    bench.idle("server + 1 TUI", [pid, *who["tuis"]], who)
    tuis += [bench.tui(state), bench.tui(state)]
    time.sleep(3)
    who = {"server": [pid], "tuis": [t.pid for t in tuis], "workers": workers}
    bench.idle("server + 3 TUIs", [pid, *who["tuis"]], who)
    for extra in tuis[1:]:
        launcher.stop(extra, grace=5)
    measured = [pid, tuis[0].pid]
    wait_until("the server subscribed", lambda: server_subscribed(bench, state), 60, step=0)
    for p in measured:
        pin(p, 1)
    time.sleep(1)
    for _ in range(plan.replay_runs):
        bench.replay("server + 1 TUI", measured, server_events(state))
    launcher.stop(tuis[0], grace=5)
    stop_server(state, pid)


def in_process(bench: Bench) -> None:
    """The old model (``console_proc``): idle, then (a fresh one counting events) the replays."""
    launcher, db = bench.launcher, bench.db
    say(f"in-process console (console_proc) with {WORKERS} workers")
    console = ConsoleUnderTest(
        launcher, db.url, bench.tmp / "inproc-idle", workers=WORKERS, expect=WORKERS, refresh=1.0
    )
    wait_until("the in-process console's workers", lambda: console.first_frame() > 0, 90)
    time.sleep(3)
    who = {"console": [console.pid], "workers": descendants(console.pid)}
    bench.idle("in-process", [console.pid], who)
    console.stop()
    db.clear()
    console = ConsoleUnderTest(
        launcher, db.url, bench.tmp / "inproc-load", workers=WORKERS, expect=WORKERS,
        refresh=1.0, count_events=True,
    )  # fmt: skip
    wait_until("the in-process console's workers", lambda: console.first_frame() > 0, 90)
    wait_until("the in-process console subscribed", lambda: _subscribed(console, db), 60, step=0)
    pin(console.pid, 1)
    time.sleep(1)
    for _ in range(bench.plan.replay_runs):
        bench.replay("in-process", [console.pid], console.events)
    console.stop()


def cold_starts(bench: Bench) -> None:
    """``sentry-console`` with no server yet: launch to the first frame with data."""
    say(f"attach starting the server: {bench.plan.start_runs} runs, fresh state dir each")
    for run in range(bench.plan.start_runs):
        state = bench.tmp / f"cold{run}"
        pid = 0
        try:
            tui = bench.tui(state, "cold")
            pid = server_pid(state)
            bench.launcher.stop(tui, grace=5)
        finally:
            if pid:
                stop_server(state, pid)
        say(f"cold run {run + 1}: {bench.out.get('attach cold').values[-1]:.2f}s")


def rows(res: Results, plan: Plan) -> list[Row]:
    """The table's rows."""
    g = res.get
    base = g("idle cpu in-process")
    one, three = g("idle cpu server + 1 TUI"), g("idle cpu server + 3 TUIs")
    load_base, load = g("load cpu in-process"), g("load cpu server + 1 TUI")
    rss = g("load rss server + 1 TUI")
    cmds1, cmds3 = g("broker cmds server + 1 TUI"), g("broker cmds server + 3 TUIs")
    rate = f"{plan.rate:,}/s"
    return [
        Row("attach, server running: s to data", g("attach running"), "", None, ".2f",
            "<= 1.0 s", _at_most(g("attach running"), 1.0)),
        Row("  same, to broker shown connected", g("attach up running"), "", None, ".2f"),
        Row("attach, TUI starts server: s to data", g("attach cold"), "", None, ".2f",
            "<= 1.5 s", _at_most(g("attach cold"), 1.5)),
        Row("  same, to broker shown connected", g("attach up cold"), "", None, ".2f"),
        Row("idle CPU %: server + 1 TUI", one, "in-process", base, ".2f", "<= 1.0x",
            _ratio_at_most(one, base, 1.0)),
        Row("  of which the TUI", g("idle cpu server + 1 TUI clients"), "in-process", base,
            ".2f"),
        Row("idle CPU %: server + 3 TUIs", three, "in-process", base, ".2f"),
        Row("  of which the 3 TUIs", g("idle cpu server + 3 TUIs clients"), "", None, ".2f"),
        Row("idle CPU %: server alone", g("idle cpu server alone"), "in-process", base, ".2f"),
        Row(f"{rate} replay CPU %: server + 1 TUI", load, "in-process", load_base, ".1f",
            "<= 1.0x", _ratio_at_most(load, load_base, 1.0)),
        Row(f"{rate} replay RSS MB: server + 1 TUI", rss, "in-process", g("load rss in-process"),
            ".0f", "<= 80 MB", _at_most(rss, 80)),
        Row("  of which the server", g("load rss server + 1 TUI first"), "", None, ".0f"),
        Row("  of which the TUI", g("load rss server + 1 TUI rest"), "", None, ".0f",
            "<= 35 MB", _at_most(g("load rss server + 1 TUI rest"), 35)),
        Row("idle RSS MB: server + 1 TUI", g("idle rss server + 1 TUI"), "in-process",
            g("idle rss in-process"), ".0f"),
        Row("  of which the server", g("idle rss server + 1 TUI first"), "", None, ".0f"),
        Row("  of which the TUI", g("idle rss server + 1 TUI rest"), "", None, ".0f"),
        Row(f"{rate} replay events seen/sent", g("load seen server + 1 TUI"), "in-process",
            g("load seen in-process"), ".4f"),
        Row(f"{rate} replay reached tasks/s", g("load rate server + 1 TUI"), "in-process",
            g("load rate in-process"), ".0f"),
        Row("idle broker cmds/s: 3 TUIs", cmds3, "1 TUI", cmds1, ".2f", "same (+-10%)",
            None if not cmds1.values or not cmds3.values or not cmds1.median else
            abs(cmds3.median / cmds1.median - 1) <= 0.10),
        Row("idle broker cmds/s: server + 1 TUI", cmds1, "in-process",
            g("broker cmds in-process"), ".2f"),
        Row("idle broker cmds/s: server alone", g("broker cmds server alone"), "in-process",
            g("broker cmds in-process"), ".2f"),
        Row("  db total with workers: 3 TUIs", g("broker cmds db server + 3 TUIs"), "1 TUI",
            g("broker cmds db server + 1 TUI"), ".2f"),
        Row("broker connections: server", g("broker conns server + 3 TUIs server"),
            "in-process", g("broker conns in-process console"), ".0f"),
        Row("broker connections: 3 TUIs", g("broker conns server + 3 TUIs tuis"), "", None,
            ".0f", "0", _at_most(g("broker conns server + 3 TUIs tuis"), 0)),
    ]  # fmt: skip


def machine_speed() -> str:
    """How fast one core runs plain Python here, so absolute % of a core compare across machines
    (the ratios against the in-process console, measured in the same run, need no such help)."""
    started = time.perf_counter()
    total = 0
    for step in range(10_000_000):
        total += step
    took = time.perf_counter() - started
    return f"a 10M-step Python loop takes {took:.2f} s on this machine"


def _at_most(stat: Stat, limit: float) -> bool | None:
    return None if not stat.values else stat.median <= limit


def _ratio_at_most(ours: Stat, base: Stat, limit: float) -> bool | None:
    if not ours.values or not base.values:
        return None
    return ours.median <= limit * base.median


def main() -> None:
    """Run every part and print the table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs (about 2 minutes)")
    parser.add_argument("--rate", type=int, default=5_000, help="replay tasks/s (3 events each)")
    opts = parser.parse_args()
    plan = dataclasses.replace(QUICK if opts.quick else Plan(), rate=opts.rate)
    os.environ["PYTHONPATH"] = str(ROOT)  # the workers import the bench app

    def interrupted(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGHUP, interrupted)
    become_subreaper()
    launcher = ServerLauncher()
    began = time.monotonic()
    try:
        with claimed_db() as db, tempfile.TemporaryDirectory(prefix="bench-server-") as tmp:
            say(f"Redis db {db.db}, work dir {tmp}")
            bench = Bench(launcher, db, Path(tmp), plan)
            for part in (served, in_process, cold_starts):
                db.clear()
                part(bench)
                launcher.close()
                reap()
    except KeyboardInterrupt:
        print("interrupted; every process started here was killed", file=sys.stderr)
        raise SystemExit(130) from None
    finally:
        launcher.close()
        reap()
    took = time.monotonic() - began
    title = (
        f"supervisor server + attached TUIs (left) vs the in-process console (right), "
        f"{WORKERS} workers: median [min-max] of {'quick ' if opts.quick else ''}runs, "
        f"{os.cpu_count()} cores, {platform.python_implementation()} "
        f"{platform.python_version()}, {platform.system()} {platform.release()}; "
        f"took {took / 60:.1f} min; {machine_speed()}"
    )
    print()
    print(render(rows(bench.out, plan), title))


if __name__ == "__main__":
    main()
