"""Benchmark: restarting a lone worker under load, the console's start-first replacement against
``supervisorctl restart`` of the same worker command, side by side in one run.

Run from the repository root with the bench extra:
``./dev bench tests/benchmarks/bench_restart_gap.py`` (about a minute; ``--rounds N`` repeats
the pair). Needs RabbitMQ on 127.0.0.1:5672 (a private vhost, deleted at the end: consumer
counts are exact there) and Redis on 127.0.0.1:6379 (a claimed database counts task runs). For
each side, 1,000 tasks flow at 200/s onto the side's own queue while its single worker is
restarted once; a sampler asks the broker for the queue's consumer count every 100 ms. Printed
per side: the longest stretch with no consumer, the time from the restart until the new worker
answered a ping, and tasks lost / run twice.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from kombu import Connection

from console.appref import load_app
from console.runtime import ConsoleRuntime
from console.settings import Settings, WorkerGroup
from tests.benchmarks.compare.procs import BIN, ROOT
from tests.benchmarks.restartgap_app import QUEUES, RUNS_KEY
from tests.redis_claim import claimed_db
from tests.waiting import wait_until

APP = "tests.benchmarks.restartgap_app:app"
TASKS = 1000
RATE = 200.0


class GapSampler:
    """The longest time ``queue`` had no consumer, sampled every 100 ms in a thread."""

    def __init__(self, url: str, queue: str) -> None:
        self.url, self.queue = url, queue
        self.longest = 0.0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        empty_since: float | None = None
        with Connection(self.url) as conn:
            channel = conn.default_channel
            while not self._stop.is_set():
                _, _, consumers = channel.queue_declare(self.queue, passive=True)
                now = time.monotonic()
                self.samples += 1
                if consumers == 0:
                    empty_since = now if empty_since is None else empty_since
                    self.longest = max(self.longest, now - empty_since)
                else:
                    empty_since = None
                self._stop.wait(0.1)

    def stop(self) -> None:
        """Stop sampling."""
        self._stop.set()
        self._thread.join(10)


def ping(app, node: str) -> bool:  # type: ignore[no-untyped-def]
    """Whether ``node`` answers within half a second."""
    replies = app.control.ping(destination=[node], timeout=0.5, limit=1)
    return any(node in reply for reply in replies or ())


def flow(app, queue: str, first: int) -> threading.Thread:  # type: ignore[no-untyped-def]
    """Send TASKS tasks at RATE per second onto ``queue`` in a thread."""

    def send() -> None:
        began = time.monotonic()
        for n in range(TASKS):
            app.send_task("gap.work", args=(first + n,), queue=queue)
            time.sleep(max(0.0, began + (n + 1) / RATE - time.monotonic()))

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


def supervisord_conf(tmp: Path, env: dict[str, str]) -> Path:
    """supervisord running the console's own worker command on the second queue."""
    command = f"{BIN / 'sentry-console'} --app {APP} run worker -Q {QUEUES[1]} -n gs-1@%%h -c 2"
    environment = ",".join(f'{k}="{v}"' for k, v in env.items())
    conf = tmp / "supervisord.conf"
    conf.write_text(
        f"""[unix_http_server]
file={tmp}/supervisor.sock
[supervisord]
logfile={tmp}/supervisord.log
pidfile={tmp}/supervisord.pid
childlogdir={tmp}
[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
[supervisorctl]
serverurl=unix://{tmp}/supervisor.sock
[program:gs]
command={command}
directory={ROOT}
environment={environment}
autostart=true
autorestart=true
redirect_stderr=true
stdout_logfile={tmp}/gs.log
killasgroup=true
stopasgroup=false
stopwaitsecs=30
"""
    )
    return conf


def round_trip(app, url: str, redis_url: str, tmp: Path, rounds: int) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    """Both sides, ``rounds`` times each; one result dict per side and round."""
    host = os.uname().nodename
    env = {"SENTRY_BROKER_URL": url, "GAP_REDIS_URL": redis_url, "PYTHONPATH": str(ROOT)}
    os.environ.update(env)
    group = WorkerGroup(
        name="gw", processes=1, concurrency=2, queues=(QUEUES[0],), hostname="gc-{n}@%h"
    )
    settings = Settings(
        broker=None,
        broker_source="bench",
        app=APP,
        state_dir=tmp / "state",
        worker_groups=(group,),
        cron=False,
    ).with_broker(url, "bench")
    settings.state_dir.mkdir(mode=0o700)
    runtime = ConsoleRuntime(settings, app)
    ctl = [str(BIN / "supervisorctl"), "-c", str(supervisord_conf(tmp, env))]
    supervisord = subprocess.Popen(
        [str(BIN / "supervisord"), "-n", "-c", str(tmp / "supervisord.conf")],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    results: list[dict[str, object]] = []
    try:
        runtime.start()
        nodes = (f"gc-1@{host}", f"gc-1-b@{host}")  # the replacement takes the other name
        console_node = nodes[0]
        wait_until("workers", lambda: ping(app, console_node) and ping(app, f"gs-1@{host}"), 90)
        running = runtime.supervisor.wait_for
        assert running(lambda snaps: all(p.state == "RUNNING" for p in snaps), 60)
        first = 0
        for _ in range(rounds):
            for side, queue in (("console r", QUEUES[0]), ("supervisorctl restart", QUEUES[1])):
                sampler = GapSampler(url, queue)
                sender = flow(app, queue, first)
                time.sleep(TASKS / RATE / 2)
                began = time.monotonic()
                if side == "console r":
                    console_node = nodes[1] if console_node == nodes[0] else nodes[0]
                    outcome: list[str] = []
                    restarter = threading.Thread(
                        target=lambda out=outcome: out.append(runtime.restart("gw-1")),
                        daemon=True,
                    )
                    restarter.start()
                    wait_until("the new worker", partial(ping, app, console_node), 60)
                    answered_at = time.monotonic()
                    restarter.join(120)
                    assert outcome and "replaced" in outcome[0], outcome
                else:
                    pid = subprocess.run([*ctl, "pid", "gs"], capture_output=True, text=True)
                    old = int(pid.stdout.strip())
                    caller = subprocess.Popen([*ctl, "restart", "gs"], stdout=subprocess.DEVNULL)
                    wait_until("the old worker gone", partial(_gone, old), 60)
                    wait_until("the new worker", lambda: ping(app, f"gs-1@{host}"), 60)
                    answered_at = time.monotonic()
                    caller.wait(60)
                answered = answered_at - began
                sender.join(60)
                wait_until("every task run", partial(_done, redis_url, first), 120)
                sampler.stop()
                runs = _runs(redis_url, first)
                results.append(
                    {
                        "side": side,
                        "gap": sampler.longest,
                        "samples": sampler.samples,
                        "answered": answered,
                        "lost": sum(1 for c in runs if c == 0),
                        "twice": sum(1 for c in runs if c > 1),
                    }
                )
                first += TASKS
    finally:
        runtime.shutdown()
        subprocess.run([*ctl, "shutdown"], capture_output=True, timeout=60)
        try:
            supervisord.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(supervisord.pid, 9)
            supervisord.wait()
    return results


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _gone(pid: int) -> bool:
    return not _alive(pid)


def _runs(redis_url: str, first: int) -> list[int]:
    import redis

    client = redis.Redis.from_url(redis_url)
    counts = client.hmget(RUNS_KEY, [str(n) for n in range(first, first + TASKS)])
    client.close()
    return [int(c or 0) for c in counts]


def _done(redis_url: str, first: int) -> bool:
    return all(c > 0 for c in _runs(redis_url, first))


def main() -> None:
    """Set up the vhost and counters, run both sides, print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    if shutil.which("rabbitmqctl") is None or not (BIN / "supervisord").exists():
        sys.exit("needs rabbitmqctl and the bench extra (supervisord): ./dev bench ...")
    vhost = f"sc-gap-{uuid.uuid4().hex[:8]}"
    ctl = ["rabbitmqctl", "-q"]
    subprocess.run([*ctl, "add_vhost", vhost], check=True, capture_output=True, timeout=60)
    try:
        perms = [*ctl, "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"]
        subprocess.run(perms, check=True, capture_output=True, timeout=60)
        url = f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
        with claimed_db(ttl=1800) as claim, tempfile.TemporaryDirectory() as tmp:
            os.environ["SENTRY_BROKER_URL"] = url
            app = load_app(APP, url)
            with Connection(url) as conn:
                for queue in app.conf.task_queues:
                    queue(conn.default_channel).declare()
            results = round_trip(app, url, claim.url, Path(tmp), args.rounds)
    finally:
        subprocess.run([*ctl, "delete_vhost", vhost], capture_output=True, timeout=60)
    print(f"| restart ({TASKS} tasks at {RATE:.0f}/s) | longest gap (100 ms samples) "
          "| new worker answers | lost | run twice |")  # fmt: skip
    print("|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['side']} | {r['gap']:.1f} s ({r['samples']} samples) | {r['answered']:.2f} s "
            f"| {r['lost']} | {r['twice']} |"
        )


if __name__ == "__main__":
    main()
