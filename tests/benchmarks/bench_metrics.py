"""What Prometheus metrics cost the supervisor server, and whether its queue length is exact.

Run: ``python tests/benchmarks/bench_metrics.py [--seconds 20] [--runs 2] [--churn-seconds 60]``.
Claims an empty database of the Redis at 127.0.0.1:6379 and measures:

1. in process, no broker: the event hook's cost per event (alone, and inside the cluster
   state's ``apply_many`` against no hook), and one scrape's cost with 1,000 task names;
2. ``serve`` (the bench app's 20 queues, no programs) under a replay of 5,000 tasks/s
   (15,000 events/s, Redis pub/sub), without metrics and with ``--metrics`` scraped every 5 s,
   alternating runs; server CPU from the replay's start to 1 s after its end;
3. ``serve --metrics`` for ``--churn-seconds`` under task events with 1,000 distinct task names
   from workers that come and go (a new set of 4 every ``--rotate`` s, each beating while
   current; ``CONSOLE_OFFLINE_DROP_AFTER`` = ``--drop-after``): RSS and series per scrape, with
   ``--metrics-hostname host`` and ``generic``, and the same server without metrics;
4. ``celery_queue_length`` of a 10-priority Redis queue behind a key prefix: the true depth
   (every sub-queue's LLEN), what ``watch --metrics`` reports, and what celery-exporter's method
   reports (LLEN of the queue's name through kombu's channel client).

celery-exporter itself is not run: it is not published to PyPI (the ``celery-exporter`` there
is another, older project whose source package no longer builds), so item 4 reproduces its
documented way of reading a Redis queue's length instead. Prints every figure; deletes what
it created; every process it starts is killed with its process group when it ends.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import redis

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))

from tests.benchmarks.bench_event_ingest import envelope, publish
from tests.metrics_support import ROOT, free_port, get, parse
from tests.redis_claim import ClaimedDb, claimed_db
from tests.waiting import wait_until

APP = "tests.benchmarks.compare.benchapp:app"
SCRAPE_EVERY = 5.0


def say(text: str) -> None:
    """One progress line."""
    print(text, flush=True)


# 1. in process ---------------------------------------------------------------------------------


def micro(tasks: int, names: int) -> dict[str, float]:
    """ns per event of the hook, of apply_many with and without it, and ms per scrape."""
    from prometheus_client import generate_latest
    from prometheus_client.registry import CollectorRegistry

    from console.cluster.state import ClusterState
    from console.metrics.collector import ConsoleCollector
    from console.metrics.exposition import scraper
    from console.metrics.taskevents import TaskEventCounts

    events: list[dict[str, Any]] = []
    for i in range(tasks):
        common = {"uuid": f"t{i}", "hostname": f"w{i % 4}@host{i % 4}", "timestamp": 1.0}
        events.append(dict(common, type="task-received", name=f"bench.task_{i % names}"))
        events.append(dict(common, type="task-started"))
        events.append(dict(common, type="task-succeeded", runtime=0.0042, result="'ok'"))
    counts = TaskEventCounts()
    calls = [(str(e["type"]), f"bench.task_{(n // 3) % names}", str(e["hostname"]), e)
             for n, e in enumerate(events)]  # fmt: skip
    began = time.perf_counter()
    for kind, name, host, event in calls:
        counts.record(kind, name, host, "q", event)
    hook_ns = (time.perf_counter() - began) / len(calls) * 1e9

    def apply(hooked: bool) -> float:
        state = ClusterState()
        if hooked:
            state.on_task_event = TaskEventCounts().record
        began = time.perf_counter()
        for n in range(0, len(events), 300):
            state.apply_many(events[n : n + 300])
        return (time.perf_counter() - began) / len(events) * 1e9

    bare = min(apply(False) for _ in range(3))
    hooked = min(apply(True) for _ in range(3))
    data = synthetic_data()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ConsoleCollector(lambda: data, counts, drop_after=300.0))
    began = time.perf_counter()
    runs = 10
    for _ in range(runs):
        reference = generate_latest(registry)  # everything through prometheus_client
    reference_ms = (time.perf_counter() - began) / runs * 1000
    fast = CollectorRegistry(auto_describe=False)
    fast.register(ConsoleCollector(lambda: data, counts, drop_after=300.0, task_families=False))
    scrape = scraper(fast, counts.rows)  # what the listener does
    began = time.perf_counter()
    for _ in range(runs):
        chunks, _ = scrape("")
    scrape_ms = (time.perf_counter() - began) / runs * 1000
    body = b"".join(chunks)
    ours, theirs = parse(body.decode()), parse(reference.decode())
    age = ("sentry_console_refresh_age_seconds", ())
    ours.pop(age, None), theirs.pop(age, None)
    assert ours == theirs, "the two renderings differ"
    return {
        "hook_ns": hook_ns,
        "apply_ns": bare,
        "apply_hooked_ns": hooked,
        "scrape_ms": scrape_ms,
        "reference_ms": reference_ms,
        "scrape_kb": len(body) / 1024,
        "samples": sum(1 for line in body.decode().splitlines() if not line.startswith("#")),
    }


def synthetic_data() -> Any:
    """A refresh like a big deployment's: 12 programs, 20 queues, 50 workers."""
    from console.broker.health import BrokerHealth
    from console.cluster.models import WorkerInfo
    from console.queuestats import QueueRow
    from console.runtime import DashboardData
    from console.supervision import ProcessSnapshot, ProcessState

    processes = tuple(
        ProcessSnapshot(
            *(f"worker-{n}", "worker", ProcessState.RUNNING, 100 + n, 100 + n, 1.0, 60.0, 0),
            *(None, None, 1.5, 80 << 20, ""),
        )
        for n in range(12)
    )
    queues = tuple(QueueRow(f"q{n}", n, 2, 0, True, None, None, (), None) for n in range(20))
    workers = tuple(
        WorkerInfo(f"w{n}@host{n}", True, 1.0, n, 1, 10, 0, 4, ("q0", "q1"), None, None)
        for n in range(50)
    )
    health = BrokerHealth("connected", None, 0.3, "7.0", 0, 1.0)
    return DashboardData("redis://h/0", health, processes, queues, workers)


# 2. and 3. a real server -------------------------------------------------------------------------


class Server:
    """``sentry-console serve`` in its own session, killed with its group when done."""

    def __init__(
        self, db: ClaimedDb, tmp: Path, name: str, metrics: bool, drop: float, mode: str = "host"
    ) -> None:
        self.state = tmp / name
        self.state.mkdir(mode=0o700)
        conf = tmp / f"{name}.conf.py"
        group = {"name": "worker", "processes": 0, "concurrency": 1}
        conf.write_text(
            f"CONSOLE_WORKERS = [{group!r}]\nCONSOLE_CRON = False\n"
            f"CONSOLE_OFFLINE_DROP_AFTER = {drop!r}\n"
        )
        self.port = free_port() if metrics else 0
        argv = [sys.executable, "-m", "console", "--app", APP, "serve"]
        if metrics:
            argv += ["--metrics", f"127.0.0.1:{self.port}", "--metrics-hostname", mode]
        env = dict(os.environ, SENTRY_BROKER_URL=db.url, SENTRY_CONF=str(conf))
        env |= {"SENTRY_CONSOLE_STATE_DIR": str(self.state), "PYTHONPATH": str(ROOT)}
        env.pop("NOTIFY_SOCKET", None)
        self.log = tmp / f"{name}.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        self.ps = psutil.Process(self.proc.pid)

    def events(self) -> int:
        """Events the server counted, from its newest snapshot."""
        from tests.benchmarks.compare.attached import server_data

        return server_data(self.state).events_received

    def wait_subscribed(self, db: ClaimedDb) -> None:
        """Until a probe task's events are counted."""

        def counted() -> bool:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                before = self.events()
            except Exception:  # no socket yet, or a server still starting
                return False
            publish(db.client, db.db, 3, 100)
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                if self.events() > before:
                    return True
                time.sleep(0.2)
            return False

        wait_until("the server counting events", counted, 90, step=0.5)

    def cpu(self) -> float:
        """CPU seconds so far (every thread of the server)."""
        times = self.ps.cpu_times()
        return float(times.user + times.system)

    def rss_mb(self) -> float:
        """Resident memory now."""
        return float(self.ps.memory_info().rss / 2**20)

    def stop(self) -> None:
        """Kill the server and everything in its session."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)


class Scraper:
    """Scrapes ``/metrics`` every 5 s on a thread; keeps each scrape's duration and series."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.durations: list[float] = []
        self.series: list[int] = []
        self.workers: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while self.port and not self._stop.wait(SCRAPE_EVERY):
            began = time.perf_counter()
            reply = get(self.port, "/metrics", timeout=10)
            if reply is None:
                continue
            self.durations.append(time.perf_counter() - began)
            samples = parse(reply.body)
            self.series.append(len(samples))
            self.workers.append(sum(1 for name, _ in samples if name == "celery_worker_up"))

    def stop(self) -> None:
        """Stop scraping."""
        self._stop.set()
        self._thread.join(15)


def _publish(db: int, events: int, rate: int) -> None:
    client = redis.Redis(host="127.0.0.1", port=6379, db=db)
    publish(client, db, events, rate)


def replay_cpu(server: Server, db: ClaimedDb, rate: int, seconds: float) -> tuple[float, float]:
    """One paced replay from another process: (server CPU % of a core, events seen/sent)."""
    events = int(rate * seconds) * 3
    before, cpu0 = server.events(), server.cpu()
    proc = mp.get_context("spawn").Process(target=_publish, args=(db.db, events, rate))
    began = time.monotonic()
    proc.start()
    proc.join()
    time.sleep(1.0)
    cpu = 100 * (server.cpu() - cpu0) / (time.monotonic() - began)
    deadline = time.monotonic() + 5.0  # a server's snapshot is up to one refresh old
    seen = server.events() - before
    while seen < events and time.monotonic() < deadline:
        time.sleep(0.25)
        seen = server.events() - before
    return cpu, seen / events


def cpu_runs(db: ClaimedDb, tmp: Path, rate: int, seconds: float, runs: int) -> dict[str, Any]:
    """Alternating replays: the server without metrics, and with them scraped every 5 s."""
    out: dict[str, Any] = {"off": [], "on": [], "seen_off": [], "seen_on": [], "scrape_s": []}
    for run in range(runs):
        for key in ("off", "on"):
            server = Server(db, tmp, f"cpu-{key}-{run}", metrics=key == "on", drop=300.0)
            try:
                server.wait_subscribed(db)
                scraper = Scraper(server.port) if key == "on" else None
                time.sleep(1.0)
                cpu, seen = replay_cpu(server, db, rate, seconds)
                if scraper is not None:
                    scraper.stop()
                    out["scrape_s"] += scraper.durations
                out[key].append(cpu)
                out[f"seen_{key}"].append(seen)
                say(f"run {run + 1} metrics {key}: server {cpu:.1f}% of a core, seen {seen:.4f}")
            finally:
                server.stop()
            db.clear()
    return out


def _churn(db: int, rate: int, seconds: float, names: int, rotate: float) -> None:
    """Tasks with ``names`` names from 4 workers that change every ``rotate`` s, beating."""
    client = redis.Redis(host="127.0.0.1", port=6379, db=db)
    prefix = f"/{db}.celeryev/"
    began = time.monotonic()
    beat_at, n = 0.0, 0
    while (now := time.monotonic()) - began < seconds:
        generation = int((now - began) // rotate)
        hosts = [f"w{k}@churn-{generation}-{k}" for k in range(4)]
        pipe = client.pipeline(transaction=False)
        if now - beat_at >= 1.0:
            beat_at = now
            for k, host in enumerate(hosts):
                beat = {"type": "worker-heartbeat", "hostname": host, "timestamp": time.time(),
                        "freq": 2.0, "active": 0, "processed": n, "pid": 1000 + k,
                        "utcoffset": 0, "sw_ident": "py-celery"}  # fmt: skip
                pipe.publish(prefix + "worker.heartbeat", envelope(beat, "worker.heartbeat", n))
        for _ in range(max(1, rate // 100)):  # about 10 ms worth
            task_id = str(uuid.uuid4())
            host = hosts[n % 4]
            common = {"hostname": host, "uuid": task_id, "timestamp": time.time(), "utcoffset": 0}
            for kind, extra in (
                ("received", {"name": f"bench.task_{n % names}", "args": "()", "kwargs": "{}"}),
                ("started", {}),
                ("succeeded", {"runtime": 0.001 * (n % 50), "result": "None"}),
            ):
                key = f"task.{kind}"
                pipe.publish(
                    prefix + key, envelope(dict(common, type=f"task-{kind}", **extra), key, n)
                )
            n += 1
        pipe.execute()
        ahead = began + n / rate - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)


def churn_run(db: ClaimedDb, tmp: Path, opts: argparse.Namespace, mode: str) -> dict[str, Any]:
    """RSS and series of ``serve --metrics`` under names and workers that keep changing
    (``mode`` ``off``: the same server without metrics, for comparison)."""
    metrics = mode != "off"
    server = Server(db, tmp, f"churn-{mode}", metrics=metrics, drop=opts.drop_after, mode=mode)
    try:
        server.wait_subscribed(db)
        scraper = Scraper(server.port if metrics else 0)
        args = (db.db, opts.churn_rate, opts.churn_seconds, opts.names, opts.rotate)
        proc = mp.get_context("spawn").Process(target=_churn, args=args)
        proc.start()
        rss: list[tuple[float, float]] = []
        began = time.monotonic()
        while proc.is_alive():
            proc.join(SCRAPE_EVERY)
            rss.append((time.monotonic() - began, server.rss_mb()))
            last = scraper.series[-1] if scraper.series else 0
            workers = scraper.workers[-1] if scraper.workers else 0
            say(f"churn {mode} t={rss[-1][0]:.0f}s: RSS {rss[-1][1]:.1f} MB, {last} samples, "
                f"{workers} workers reported")  # fmt: skip
        scraper.stop()
        return {"rss": rss, "series": scraper.series, "workers": scraper.workers}
    finally:
        server.stop()
        db.clear()


# 4. queue length --------------------------------------------------------------------------------


def queue_length(db: ClaimedDb, tmp: Path) -> dict[str, int]:
    """True depth, ours and celery-exporter's method, on a 10-priority queue behind a prefix."""
    from kombu import Connection

    from tests.metrics_support.prio_app import make_app, queue_name

    suffix, prefix = uuid.uuid4().hex[:8], "sentry:"
    app = make_app(db.url, suffix, prefix)
    for priority in range(10):
        for n in range(priority + 1):
            app.send_task("prio_test.noop", (n,), priority=priority)
    queue = queue_name(suffix)
    raw = db.client
    keys = [k for k in raw.scan_iter(match=f"{prefix}{queue}*") if raw.type(k) == b"list"]
    true_depth = sum(int(raw.llen(k)) for k in keys)
    with Connection(db.url, transport_options=app.conf.broker_transport_options) as conn:
        upstream = int(conn.default_channel.client.llen(queue))
    port = free_port()
    env = dict(os.environ, SENTRY_BROKER_URL=db.url, SC_TEST_BROKER_URL=db.url)
    env |= {"SC_TEST_SUFFIX": suffix, "SC_TEST_KEYPREFIX": prefix, "PYTHONPATH": str(ROOT)}
    env |= {"SENTRY_CONSOLE_STATE_DIR": str(tmp / "queue-state")}
    env.pop("SENTRY_CONF", None)
    argv = [sys.executable, "-m", "console", "--app", "tests.metrics_support.prio_app:app"]
    argv += ["watch", "--headless", "--metrics", str(port)]
    proc = subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:

        def ours() -> float | None:
            reply = get(port, "/metrics")
            if reply is None:
                return None
            return parse(reply.body).get(("celery_queue_length", (("queue_name", queue),)))

        reported = wait_until("celery_queue_length in a scrape", ours, 60, step=0.3)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        db.clear()
    return {"true": true_depth, "ours": int(reported), "celery_exporter_method": upstream}


# report -------------------------------------------------------------------------------------------


def med(values: list[float]) -> str:
    """median [min-max]."""
    if not values:
        return "-"
    return f"{statistics.median(values):.2f} [{min(values):.2f}-{max(values):.2f}]"


def report(opts: argparse.Namespace, micro_out: dict[str, float], cpu: dict[str, Any],
           churns: dict[str, dict[str, Any]], queue: dict[str, int]) -> None:  # fmt: skip
    """Print every figure."""
    events_per_s = opts.rate * 3
    say("")
    say(f"== bench_metrics: {os.cpu_count()} cores, Python {sys.version.split()[0]} ==")
    if micro_out:
        say(
            f"hook alone:              {micro_out['hook_ns']:.0f} ns/event "
            f"= {micro_out['hook_ns'] * events_per_s / 1e7:.2f}% of a core "
            f"at {events_per_s:,} events/s"
        )
        added = micro_out["apply_hooked_ns"] - micro_out["apply_ns"]
        say(
            f"apply_many, no hook:     {micro_out['apply_ns']:.0f} ns/event; with hook "
            f"{micro_out['apply_hooked_ns']:.0f} ns/event (+{added:.0f} ns "
            f"= {added * events_per_s / 1e7:.2f}% of a core at {events_per_s:,} events/s)"
        )
        say(
            f"one scrape (in process): {micro_out['scrape_ms']:.1f} ms for "
            f"{micro_out['samples']:,} samples ({micro_out['scrape_kb']:.0f} kB; "
            "1,000 names on 4 hosts, 50 workers, 20 queues) "
            f"= {micro_out['scrape_ms'] / SCRAPE_EVERY / 10:.3f}% of a core at a scrape per 5 s "
            f"(all through prometheus_client: {micro_out['reference_ms']:.1f} ms)"
        )
    off, on = cpu["off"], cpu["on"]
    if off or on:
        say(f"serve under {opts.rate:,} tasks/s for {opts.seconds:.0f} s, {opts.runs} runs each:")
        say(f"  server CPU %, no metrics:            {med(off)}  seen {med(cpu['seen_off'])}")
        say(f"  server CPU %, metrics scraped /5 s:  {med(on)}  seen {med(cpu['seen_on'])}")
    if off and on:
        say(
            f"  difference of medians: {statistics.median(on) - statistics.median(off):+.2f}% "
            f"of a core; scrape wall time {med([s * 1000 for s in cpu['scrape_s']])} ms"
        )
    for mode, churn in churns.items():
        rss = [mb for _, mb in churn["rss"]]
        if rss:
            half = len(rss) // 2
            say(
                f"churn {opts.churn_seconds:.0f} s at {opts.churn_rate:,} tasks/s, "
                f"{opts.names:,} names, "
                f"4 new workers every {opts.rotate:.0f} s, drop after {opts.drop_after:.0f} s, "
                f"{'no metrics' if mode == 'off' else '--metrics-hostname ' + mode}:"
            )
            say(
                f"  RSS MB: first {rss[0]:.1f}, half-way (t={churn['rss'][half][0]:.0f}s) "
                f"{rss[half]:.1f}, max {max(rss):.1f}, end {rss[-1]:.1f}; second half "
                f"{rss[-1] - rss[half]:+.1f} MB"
            )
            say(
                f"  samples per scrape: {churn['series'][:1]} first, "
                f"max {max(churn['series'], default=0)}, "
                f"last {churn['series'][-1:]}; workers reported: max "
                f"{max(churn['workers'], default=0)}, last {churn['workers'][-1:]}"
            )
    if queue:
        say(
            f"10-priority Redis queue behind a key prefix: true depth {queue['true']}, "
            f"sentry-console {queue['ours']}, "
            f"celery-exporter's method {queue['celery_exporter_method']}"
        )
    say("celery-exporter side by side: not run (not on PyPI; see the module docstring)")
    say(json.dumps({"micro": micro_out, "cpu": cpu, "churn": churns, "queue": queue}))


@contextlib.contextmanager
def workdir() -> Iterator[Path]:
    """A temporary directory for state dirs and logs."""
    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as tmp:
        yield Path(tmp)


def main() -> None:
    """Run every part and print the figures."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rate", type=int, default=5_000, help="replay tasks/s (3 events each)")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of one CPU replay")
    parser.add_argument("--runs", type=int, default=2, help="CPU replays per configuration")
    parser.add_argument("--churn-seconds", type=float, default=60.0, help="memory run length")
    parser.add_argument("--churn-rate", type=int, default=1_000, help="memory run tasks/s")
    parser.add_argument("--names", type=int, default=1_000, help="distinct task names")
    parser.add_argument("--rotate", type=float, default=10.0, help="s between worker sets")
    parser.add_argument("--drop-after", type=float, default=15.0, help="CONSOLE_OFFLINE_DROP_AFTER")
    parser.add_argument(
        "--modes", default="host,generic,off", help="--metrics-hostname of churns (off: none)"
    )
    parser.add_argument("--parts", default="micro,queue,cpu,churn", help="what to run")
    opts = parser.parse_args()
    parts = set(opts.parts.split(","))
    micro_out: dict[str, float] = {}
    queue: dict[str, int] = {}
    cpu: dict[str, Any] = {"off": [], "on": [], "seen_off": [], "seen_on": [], "scrape_s": []}
    if "micro" in parts:
        say("in process: hook and scrape cost ...")
        micro_out = micro(100_000, opts.names)
    with workdir() as tmp, claimed_db("127.0.0.1", 6379) as db:
        if "queue" in parts:
            say("queue length on a 10-priority queue behind a key prefix ...")
            queue = queue_length(db, tmp)
        if "cpu" in parts:
            say(f"replays at {opts.rate:,} tasks/s ...")
            cpu = cpu_runs(db, tmp, opts.rate, opts.seconds, opts.runs)
        churn: dict[str, dict[str, Any]] = {}
        for mode in opts.modes.split(",") if "churn" in parts else ():
            say(f"churn for {opts.churn_seconds:.0f} s, --metrics-hostname {mode} ...")
            churn[mode] = churn_run(db, tmp, opts, mode)
    report(opts, micro_out, cpu, churn, queue)


if __name__ == "__main__":
    main()
