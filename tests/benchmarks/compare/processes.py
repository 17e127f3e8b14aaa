"""Scenarios 4-5: restart latency against supervisord, throughput under the console vs by hand."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import uuid
from pathlib import Path

import psutil
from celery import Celery

from tests.benchmarks.compare.benchapp import APP_PATH, QUEUES, TICKS_KEY, make_app
from tests.benchmarks.compare.monitoring import Plan, Results, say
from tests.benchmarks.compare.procs import BIN, ROOT, ClaimedDb, Launcher, wait_until
from tests.benchmarks.compare.tools import ConsoleUnderTest, start_workers, worker_command

_apps: dict[str, Celery] = {}


def ping(url: str, node: str, timeout: float = 0.5) -> bool:
    """Whether worker ``node`` answers a ping within ``timeout`` seconds."""
    app = _apps.setdefault(url, make_app(url))
    replies = app.control.ping(destination=[node], timeout=timeout, limit=1)
    return any(node in reply for reply in replies or ())


def _time_to_ping(url: str, node: str, old_pid: int, began: float) -> float:
    """Seconds from ``began`` until the old process is gone and ``node`` answers a ping."""
    psutil.Process(old_pid).wait(60) if psutil.pid_exists(old_pid) else None
    wait_until(lambda: ping(url, node, 0.25), 60, f"{node} answering after restart", step=0)
    return time.monotonic() - began


def _supervisord_conf(tmp: Path, url: str, command: list[str]) -> Path:
    """A supervisord.conf with a unix socket and one program ``w`` (Sentry's recommended flags)."""
    env = {"SENTRY_BROKER_URL": url, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
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
[program:w]
command={" ".join(command).replace("%", "%%")}
directory={ROOT}
environment={environment}
autostart=true
autorestart=true
redirect_stderr=true
stdout_logfile={tmp}/w.log
killasgroup=true
stopasgroup=true
stopwaitsecs=20
"""
    )
    return conf


def restart(plan: Plan, launcher: Launcher, db: ClaimedDb, tmp: Path, out: Results) -> None:
    """ConsoleRuntime.restart vs ``supervisorctl restart``, each until the new worker pings."""
    from console.appref import load_app
    from console.runtime import ConsoleRuntime
    from console.settings import Settings, WorkerGroup

    db.clear()
    tmp.mkdir(parents=True, exist_ok=True)
    host = os.uname().nodename
    say(f"restart: console runtime vs supervisord, {plan.restart_runs} restarts each")
    group = WorkerGroup(name="worker", processes=1, concurrency=1, hostname="rw-{n}@%h")
    settings = Settings(
        broker=None,
        broker_source="bench",
        app=APP_PATH,
        state_dir=tmp / "state",
        worker_groups=(group,),
        cron=False,
    ).with_broker(db.url, "bench")
    settings.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    runtime = ConsoleRuntime(settings, load_app(APP_PATH, db.url))
    conf = _supervisord_conf(tmp, db.url, worker_command(db.url, tmp, "sv-1@%h", 1))
    ctl = [str(BIN / "supervisorctl"), "-c", str(conf)]
    supervisord = launcher.start(
        [str(BIN / "supervisord"), "-n", "-c", str(conf)],
        launcher.env(db.url),
        log=tmp / "supervisord.out",
    )
    try:
        runtime.start()
        ours, theirs = f"rw-1@{host}", f"sv-1@{host}"
        wait_until(lambda: ping(db.url, ours) and ping(db.url, theirs), 90, "both workers")
        for run in range(plan.restart_runs):
            old = next(p.pid for p in runtime.supervisor.snapshot() if p.name == "worker-1")
            assert old is not None
            began = time.monotonic()
            runtime.restart("worker-1")
            out.add("restart console", _time_to_ping(db.url, ours, old, began))
            pid = subprocess.run([*ctl, "pid", "w"], capture_output=True, text=True, check=True)
            old = int(pid.stdout.strip())
            began = time.monotonic()
            done: dict[str, float] = {}

            def call_ctl(began: float = began, done: dict[str, float] = done) -> None:
                subprocess.run([*ctl, "restart", "w"], capture_output=True, check=True)
                done["ctl"] = time.monotonic() - began

            caller = threading.Thread(target=call_ctl)
            caller.start()
            out.add("restart supervisord", _time_to_ping(db.url, theirs, old, began))
            caller.join(60)
            say(f"restart run {run + 1}: console {out.get('restart console').values[-1]:.2f}s, "
                f"supervisord {out.get('restart supervisord').values[-1]:.2f}s "
                f"(supervisorctl returned after {done.get('ctl', float('nan')):.2f}s)")  # fmt: skip
    finally:
        runtime.shutdown()
        subprocess.run([*ctl, "shutdown"], capture_output=True, timeout=60)
        launcher.stop(supervisord, grace=10)


def fill_queue(app: Celery, db: ClaimedDb, count: int) -> None:
    """Put ``count`` ``bench.tick`` messages on the first queue (kombu's own format, copied)."""
    app.send_task("bench.tick", queue=QUEUES[0])
    template = json.loads(db.client.rpop(QUEUES[0]) or b"{}")
    pipe = db.client.pipeline(transaction=False)
    for n in range(count):
        task_id = str(uuid.uuid4())
        template["headers"]["id"] = template["headers"]["root_id"] = task_id
        template["properties"]["correlation_id"] = task_id
        template["properties"]["delivery_tag"] = str(uuid.uuid4())
        pipe.lpush(QUEUES[0], json.dumps(template))
        if n % 1000 == 999:
            pipe.execute()
    pipe.execute()


def _throughput(db: ClaimedDb, total: int) -> float:
    """Tasks per second between 10% and 90% of ``total`` processed."""

    def ticks() -> int:
        return int(db.client.get(TICKS_KEY) or 0)

    t1 = wait_until(lambda: ticks() >= total // 10, 120, "10% of the tasks", step=0.01)
    c1 = ticks()
    t2 = wait_until(lambda: ticks() >= total * 9 // 10, 300, "90% of the tasks", step=0.01)
    return (ticks() - c1) / (t2 - t1)


def overhead(plan: Plan, launcher: Launcher, db: ClaimedDb, tmp: Path, out: Results) -> None:
    """Two workers (concurrency 2) draining the same backlog under the console, then by hand."""
    say(f"overhead: 2 workers x {plan.overhead_tasks:,} tasks, {plan.overhead_runs} runs each")
    app = make_app(db.url)
    for run in range(plan.overhead_runs):
        order = ("console", "by hand") if run % 2 == 0 else ("by hand", "console")
        for mode in order:
            db.clear()
            fill_queue(app, db, plan.overhead_tasks)
            if mode == "console":
                console = ConsoleUnderTest(
                    launcher, db.url, tmp / f"over{run}", workers=2, concurrency=2, expect=0
                )
                out.add("overhead console", _throughput(db, plan.overhead_tasks))
                console.stop()
            else:
                procs, _ = start_workers(launcher, db.url, tmp, 2, concurrency=2, prefix="ow")
                out.add("overhead by hand", _throughput(db, plan.overhead_tasks))
                for proc in procs:
                    launcher.stop(proc, grace=10)
            say(f"overhead run {run + 1} {mode}: "
                f"{out.get('overhead ' + mode).values[-1]:.0f} tasks/s")  # fmt: skip
