"""Benchmark: what supervision costs. Prints a table; not collected by pytest.

1. Log-heavy throughput. The same ``sentry-console run worker`` command (the one the console
   runs) on a queue pre-filled with tasks that each write LINES_PER_TASK log lines, once under
   the console's ``Supervisor`` (output drained into its ring buffer) and once started by hand with
   its output sent to /dev/null; alternating, by hand first, ROUNDS times each. Tasks/s is counted
   over WINDOW seconds after WARMUP, from a counter the tasks increment in Redis; so is the CPU
   time of the worker's process tree plus this process (whose output pump is the supervisor's
   cost), as tasks per CPU second: a figure that other load on the machine moves much less.
2. The console's own CPU while 4 idle workers run: a child process runs the ``Supervisor`` alone,
   then the full ``ConsoleRuntime`` (headless, ``poll()`` once a second as the screen does); its
   user + system CPU time (threads included, children excluded) over IDLE_WINDOW seconds.

Run from the repository root: ``python tests/benchmarks/bench_supervision.py`` (about 4 minutes).
It claims an empty Redis database (>= 1) the way tests/conftest.py does and deletes what it wrote.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil
import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from console.programs import console_command, worker_program
from console.settings import Settings, WorkerGroup
from console.supervision import ProcessState, ProgramConfig, Supervisor
from tests.redis_claim import claimed_db

ROOT = Path(__file__).resolve().parents[2]
APP_PATH = "tests.benchmarks.supervision_app:app"
CONCURRENCY = 2
LINES_PER_TASK = 100
ROUNDS = 3
WARMUP = 3.0
WINDOW = 10.0
#: Tasks kept queued before each throughput run: more than any run gets through.
QUEUE_FILL = 8000
IDLE_WORKERS = 4
IDLE_SETTLE = 5.0
IDLE_WINDOW = 30.0
STOP_TIMEOUT = 20.0
HAND = "by hand, /dev/null"
SUPERVISED = "supervised, ring buffer"
ENGINES = {
    "supervisor": "Supervisor alone",
    "runtime": "ConsoleRuntime, poll() every 1 s",
}


@dataclass(frozen=True)
class Bench:
    """Where one benchmark run works: its broker database, queue and scratch directory."""

    client: redis.Redis
    broker_url: str
    queue: str
    token: str
    scratch: Path

    @property
    def done_key(self) -> str:
        """The counter every finished task increments."""
        return f"{self.queue}:done"

    def env(self) -> dict[str, str]:
        """Environment of every process the benchmark starts."""
        env = {k: v for k, v in os.environ.items() if k != "SENTRY_CONF"}
        env.update(
            SENTRY_BROKER_URL=self.broker_url,
            SENTRY_CONSOLE_STATE_DIR=str(self.scratch),
            BENCH_QUEUE=self.queue,
            PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
            PYTHONUNBUFFERED="1",
        )
        return env


def fill_queue(bench: Bench, depth: int) -> None:
    """Top the queue up to ``depth`` tasks: one sent through Celery, the rest copies of it."""
    from celery import Celery

    missing = depth - int(bench.client.llen(bench.queue))
    if missing <= 0:
        return
    os.environ.update(SENTRY_BROKER_URL=bench.broker_url, BENCH_QUEUE=bench.queue)
    from tests.benchmarks.supervision_app import make_app

    app: Celery = make_app(bench.broker_url, bench.queue)
    app.send_task("bench.chatty", (LINES_PER_TASK,), queue=bench.queue)
    template = bench.client.lindex(bench.queue, 0)
    assert isinstance(template, bytes)  # the client does not decode responses
    raw = template.decode()
    message = json.loads(raw)
    ids = (message["headers"]["id"], message["properties"]["delivery_tag"])
    pipe = bench.client.pipeline(transaction=False)
    for index in range(1, missing):
        copy = raw
        for old in ids:
            copy = copy.replace(old, str(uuid.uuid4()))
        pipe.lpush(bench.queue, copy)
        if index % 1000 == 0:
            pipe.execute()
    pipe.execute()
    app.close()


def worker_command(bench: Bench, name: str) -> list[str]:
    """The worker command the console runs, for the benchmark app."""
    return [
        *console_command(),
        *("--app", APP_PATH, "run", "worker"),
        *("-n", f"{name}-{bench.token[:8]}@%h", "-c", str(CONCURRENCY), "-l", "WARNING"),
        *("-Q", bench.queue),
    ]


def done(bench: Bench) -> int:
    """Tasks finished so far."""
    return int(bench.client.get(bench.done_key) or 0)


@dataclass(frozen=True)
class Window:
    """What one throughput run measured."""

    tasks_per_s: float
    cpu_seconds: float
    own_cpu_seconds: float
    ran_dry: bool

    @property
    def tasks_per_cpu_s(self) -> float:
        """Tasks per CPU second spent by the worker's processes and by this process."""
        return self.tasks_per_s * WINDOW / self.cpu_seconds if self.cpu_seconds else 0.0


def cpu_seconds(processes: list[psutil.Process]) -> float:
    """User + system CPU seconds of the processes still alive."""
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def measure(bench: Bench, group_leader: Callable[[], int | None]) -> Window:
    """Tasks/s and CPU over WINDOW once the worker is busy and warm.

    CPU counts the worker's whole process tree (from ``group_leader``'s pid) and this process,
    whose output pump is the cost of supervision.
    """
    start = done(bench)
    deadline = time.monotonic() + 60
    while done(bench) == start:
        if time.monotonic() > deadline:
            raise RuntimeError("the worker finished no task within 60 s")
        time.sleep(0.05)
    time.sleep(WARMUP)
    leader = group_leader()
    assert leader is not None
    root = psutil.Process(leader)
    own = psutil.Process()
    processes = [own, root, *root.children(recursive=True)]
    first, began = done(bench), time.monotonic()
    cpu_first, own_first = cpu_seconds(processes), cpu_seconds([own])
    time.sleep(WINDOW)
    last, ended = done(bench), time.monotonic()
    cpu_last, own_last = cpu_seconds(processes), cpu_seconds([own])
    rate = (last - first) / (ended - began)
    dry = int(bench.client.llen(bench.queue)) == 0
    return Window(rate, cpu_last - cpu_first, own_last - own_first, dry)


def stop_group(popen: subprocess.Popen[bytes]) -> None:
    """Warm-stop a worker started in its own session, then SIGKILL whatever is left of it."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(popen.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        popen.wait(STOP_TIMEOUT)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(popen.pid, signal.SIGKILL)
    popen.wait()


def run_by_hand(bench: Bench, round_no: int) -> Window:
    """Throughput of the worker started by hand, output to /dev/null."""
    popen = subprocess.Popen(
        worker_command(bench, f"hand{round_no}"),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=bench.env(),
        start_new_session=True,
    )
    try:
        return measure(bench, lambda: popen.pid)
    finally:
        stop_group(popen)


def run_supervised(bench: Bench, round_no: int) -> Window:
    """Throughput of the worker under the Supervisor, output into its ring buffer."""
    supervisor = Supervisor(sample_interval=5.0)
    name = f"worker-{round_no}"
    try:
        supervisor.add_program(
            ProgramConfig(
                name=name,
                command=worker_command(bench, f"sup{round_no}"),
                env=bench.env(),
                startsecs=5.0,
                stopasgroup=False,
                killasgroup=True,
                stopwaitsecs=STOP_TIMEOUT,
            )
        )
        supervisor.run_in_background()
        result = measure(bench, lambda: supervisor.snapshot()[0].pgid)
        # The last line the worker wrote (an exit's "---- " mark may follow it).
        tail = [x for x in supervisor.output(name, last=3) if not x.startswith("---- ")][-1:]
        if not tail or "processed event" not in tail[0]:
            raise RuntimeError(f"the supervisor did not capture the task log lines: {tail!r}")
        return result
    finally:
        supervisor.shutdown()


def throughput(bench: Bench) -> dict[str, list[Window]]:
    """Alternate by hand and supervised runs, ROUNDS of each, by hand first."""
    results: dict[str, list[Window]] = {HAND: [], SUPERVISED: []}
    for round_no in range(1, ROUNDS + 1):
        for label, run in ((HAND, run_by_hand), (SUPERVISED, run_supervised)):
            fill_queue(bench, QUEUE_FILL)
            window = run(bench, round_no)
            results[label].append(window)
            print(
                f"  round {round_no} {label:<24} {window.tasks_per_s:7.1f} tasks/s "
                f"{window.tasks_per_cpu_s:6.2f} tasks/CPU-s, this process "
                f"{100 * window.own_cpu_seconds / WINDOW:5.1f}% CPU",
                flush=True,
            )
    return results


def idle_settings(bench: Bench) -> Settings:
    """Console settings: 4 workers of the default shape on the benchmark queue, no cron."""
    from console.broker.urls import parse_broker_url

    group = WorkerGroup(processes=IDLE_WORKERS, queues=(bench.queue,))
    return Settings(
        broker=parse_broker_url(bench.broker_url),
        broker_source="SENTRY_BROKER_URL",
        app=APP_PATH,
        state_dir=bench.scratch,
        worker_groups=(group,),
        cron=False,
    )


def idle_child(engine: str, bench: Bench) -> None:
    """Run the supervising side with 4 idle workers until stdin closes (child process)."""
    settings = idle_settings(bench)
    group = settings.worker_groups[0]
    runtime = None
    if engine == "runtime":
        from console.appref import load_app
        from console.runtime import ConsoleRuntime

        runtime = ConsoleRuntime(settings, load_app(APP_PATH, bench.broker_url))
        supervisor = runtime.supervisor
    else:
        supervisor = Supervisor(sample_interval=5.0)  # as ConsoleRuntime builds it
    try:
        if runtime is not None:
            runtime.start()
        else:
            for n in range(1, IDLE_WORKERS + 1):
                supervisor.add_program(worker_program(settings, group, n), number=n)
            supervisor.run_in_background()
        running = supervisor.wait_for(
            lambda snaps: all(s.state is ProcessState.RUNNING for s in snaps), 60.0
        )
        print("ready" if running else "not running", flush=True)
        while True:
            readable, _, _ = select.select([sys.stdin], [], [], 1.0)
            if readable and not sys.stdin.readline():
                break
            if runtime is not None:
                runtime.poll()
    finally:
        if runtime is not None:
            runtime.shutdown()
        else:
            supervisor.shutdown()


def idle_cpu(engine: str, bench: Bench) -> tuple[float, float]:
    """CPU% of the supervising process alone, and of its 4 workers, over IDLE_WINDOW."""
    argv = [sys.executable, __file__, "--idle-child", engine]
    argv += ["--broker", bench.broker_url, "--queue", bench.queue, "--scratch", str(bench.scratch)]
    child = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=bench.env(),
        start_new_session=True,
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        if child.stdout.readline().strip() != b"ready":
            raise RuntimeError(f"{engine}: the idle workers did not reach RUNNING")
        time.sleep(IDLE_SETTLE)
        console = psutil.Process(child.pid)
        workers = console.children(recursive=True)
        before, workers_before = cpu_seconds([console]), cpu_seconds(workers)
        began = time.monotonic()
        time.sleep(IDLE_WINDOW)
        after, workers_after = cpu_seconds([console]), cpu_seconds(workers)
        elapsed = time.monotonic() - began
        return 100 * (after - before) / elapsed, 100 * (workers_after - workers_before) / elapsed
    finally:
        child.stdin.close()
        try:
            child.wait(STOP_TIMEOUT + 10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            child.wait()


def report(results: dict[str, list[Window]], idle: dict[str, tuple[float, float]]) -> None:
    """Print the table."""
    print()
    print(
        f"1. log-heavy worker: -c {CONCURRENCY}, {LINES_PER_TASK} log lines per task, "
        f"{ROUNDS} alternating rounds, {WINDOW:g} s window after {WARMUP:g} s warm-up"
    )
    print(
        f"{'run':<24} {'tasks/s each round':<24} {'median':>7} {'lines/s':>8} "
        f"{'tasks/CPU-s':>12} {'supervisor CPU %':>16}"
    )
    medians = {}
    for label, windows in results.items():
        each = " ".join(f"{w.tasks_per_s:7.1f}" for w in windows)
        rate = statistics.median(w.tasks_per_s for w in windows)
        efficiency = statistics.median(w.tasks_per_cpu_s for w in windows)
        pump = statistics.median(100 * w.own_cpu_seconds / WINDOW for w in windows)
        medians[label] = (rate, efficiency)
        print(
            f"{label:<24} {each:<24} {rate:7.1f} {rate * LINES_PER_TASK:8.0f} "
            f"{efficiency:12.2f} {pump:16.1f}"
        )
    ratio = medians[SUPERVISED][0] / medians[HAND][0]
    cpu_ratio = medians[SUPERVISED][1] / medians[HAND][1]
    verdict = "meets" if ratio >= 0.95 else "misses"
    print(
        f"ratio supervised / by hand: {ratio:.3f}x tasks/s ({verdict} the >= 0.95x goal), ", end=""
    )
    print(f"{cpu_ratio:.3f}x tasks per CPU second")
    if any(w.ran_dry for windows in results.values() for w in windows):
        print("warning: the queue ran dry in at least one run; raise QUEUE_FILL")
    print()
    print(
        f"2. console CPU with {IDLE_WORKERS} idle workers over {IDLE_WINDOW:g} s (one core = 100%)"
    )
    print(f"{'supervising process':<36} {'its CPU %':>10} {'4 workers CPU %':>16}")
    for engine, (own, workers) in idle.items():
        print(f"{ENGINES[engine]:<36} {own:10.2f} {workers:16.2f}")
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def main() -> None:
    """Claim a database, run both benchmarks, print the table, clean up."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle-child", choices=tuple(ENGINES), help=argparse.SUPPRESS)
    parser.add_argument("--broker", help=argparse.SUPPRESS)
    parser.add_argument("--queue", help=argparse.SUPPRESS)
    parser.add_argument("--scratch", help=argparse.SUPPRESS)
    parser.add_argument("--skip-runtime", action="store_true", help="measure the Supervisor only")
    args = parser.parse_args()
    if args.idle_child:
        bench = Bench(
            redis.Redis.from_url(args.broker), args.broker, args.queue, "", Path(args.scratch)
        )
        idle_child(args.idle_child, bench)
        return
    token = uuid.uuid4().hex
    with claimed_db(ttl=1800) as claim, tempfile.TemporaryDirectory() as scratch:
        db = claim.db
        bench = Bench(
            claim.client,
            claim.url,
            f"bench-supervision-{token[:8]}",
            token,
            Path(scratch),
        )
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"Redis db {db}, {psutil.cpu_count()} CPUs, load average {load}", flush=True)
        results = throughput(bench)
        bench.client.delete(bench.queue)
        idle = {"supervisor": idle_cpu("supervisor", bench)}
        if not args.skip_runtime:
            idle["runtime"] = idle_cpu("runtime", bench)
        report(results, idle)


if __name__ == "__main__":
    main()
