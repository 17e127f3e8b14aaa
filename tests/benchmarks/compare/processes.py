"""Scenarios 4-5: restart latency against supervisord, throughput under the console vs by hand."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import psutil
from celery import Celery

from tests.benchmarks.compare.benchapp import APP_PATH, QUEUES, TICKS_KEY, make_app
from tests.benchmarks.compare.monitoring import Plan, Results, say
from tests.benchmarks.compare.procs import BIN, ROOT, Launcher, cpu_seconds
from tests.benchmarks.compare.tools import ConsoleUnderTest, start_workers, worker_command
from tests.redis_claim import ClaimedDb
from tests.waiting import wait_until

_apps: dict[str, Celery] = {}


def ping(url: str, node: str, timeout: float = 0.5) -> bool:
    """Whether worker ``node`` answers a ping within ``timeout`` seconds."""
    app = _apps.setdefault(url, make_app(url))
    replies = app.control.ping(destination=[node], timeout=timeout, limit=1)
    return any(node in reply for reply in replies or ())


def _time_to_ping(url: str, node: str, old_pid: int, began: float) -> float:
    """Seconds from ``began`` until the old process is gone and ``node`` answers a ping."""
    psutil.Process(old_pid).wait(60) if psutil.pid_exists(old_pid) else None
    wait_until(f"{node} answering after restart", lambda: ping(url, node, 0.25), 60, step=0)
    return time.monotonic() - began


#: supervisord's programs: Sentry's documented flags (autostart, autorestart, redirect_stderr,
#: killasgroup; SIGTERM to the worker's main process, whose warm shutdown lets tasks in flight
#: finish, as the console does) and the same plus ``stopasgroup``, whose SIGTERM also reaches the
#: pool children, so a running task is killed (and requeued) instead of finishing.
SUPERVISORD_PROGRAMS = {"w": ("sv-1@%h", False), "g": ("sg-1@%h", True)}


def _supervisord_conf(tmp: Path, url: str) -> Path:
    """A supervisord.conf with a unix socket and the programs of ``SUPERVISORD_PROGRAMS``."""
    env = {"SENTRY_BROKER_URL": url, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    environment = ",".join(f'{k}="{v}"' for k, v in env.items())
    conf = tmp / "supervisord.conf"
    text = f"""[unix_http_server]
file={tmp}/supervisor.sock
[supervisord]
logfile={tmp}/supervisord.log
pidfile={tmp}/supervisord.pid
childlogdir={tmp}
[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
[supervisorctl]
serverurl=unix://{tmp}/supervisor.sock
"""
    for name, (node, stopasgroup) in SUPERVISORD_PROGRAMS.items():
        command = " ".join(worker_command(url, tmp, node, 1)).replace("%", "%%")
        text += f"""[program:{name}]
command={command}
directory={ROOT}
environment={environment}
autostart=true
autorestart=true
redirect_stderr=true
stdout_logfile={tmp}/{name}.log
killasgroup=true
stopasgroup={str(stopasgroup).lower()}
stopwaitsecs=20
"""
    conf.write_text(text)
    return conf


def _supervisorctl_restart(ctl: list[str], url: str, program: str, node: str) -> float:
    """``supervisorctl restart program``; seconds until its new worker answers a ping."""
    pid = subprocess.run([*ctl, "pid", program], capture_output=True, text=True, check=True)
    old = int(pid.stdout.strip())
    began = time.monotonic()
    caller = threading.Thread(
        target=subprocess.run, args=([*ctl, "restart", program],), kwargs={"capture_output": True}
    )
    caller.start()
    took = _time_to_ping(url, node, old, began)
    caller.join(60)
    return took


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
    conf = _supervisord_conf(tmp, db.url)
    ctl = [str(BIN / "supervisorctl"), "-c", str(conf)]
    supervisord = launcher.start(
        [str(BIN / "supervisord"), "-n", "-c", str(conf)],
        launcher.env(db.url),
        log=tmp / "supervisord.out",
    )
    try:
        runtime.start()
        ours = f"rw-1@{host}"
        theirs = {p: node.replace("%h", host) for p, (node, _) in SUPERVISORD_PROGRAMS.items()}
        nodes = [ours, *theirs.values()]
        wait_until("every worker", lambda: all(ping(db.url, n) for n in nodes), 90)
        for run in range(plan.restart_runs):
            old = next(p.pid for p in runtime.supervisor.snapshot() if p.name == "worker-1")
            assert old is not None
            began = time.monotonic()
            runtime.restart("worker-1")  # returns once the replacement answers a ping
            # The replacement runs beside the old worker under the slot's other node name.
            ours = f"rw-1-b@{host}" if run % 2 == 0 else f"rw-1@{host}"
            wait_until(f"{ours} answering", partial(ping, db.url, ours, 0.25), 60, step=0)
            out.add("restart console", time.monotonic() - began)
            out.add("restart supervisord", _supervisorctl_restart(ctl, db.url, "w", theirs["w"]))
            out.add(
                "restart supervisord group", _supervisorctl_restart(ctl, db.url, "g", theirs["g"])
            )
            last = [out.get(f"restart {k}").values[-1] for k in ("console", "supervisord")]
            last.append(out.get("restart supervisord group").values[-1])
            say("restart run {}: console {:.2f}s, supervisord {:.2f}s, "
                "with stopasgroup {:.2f}s".format(run + 1, *last))  # fmt: skip
    finally:
        runtime.shutdown()
        subprocess.run([*ctl, "shutdown"], capture_output=True, timeout=60)
        launcher.stop(supervisord, grace=10)


def message_template(app: Celery, db: ClaimedDb) -> dict[str, Any]:
    """One ``bench.tick`` message as kombu puts it on Redis (sent while nothing consumes)."""
    app.send_task("bench.tick", queue=QUEUES[0])
    raw = db.client.rpop(QUEUES[0])
    assert not isinstance(raw, list)  # no count given: one message or None
    template: dict[str, Any] = json.loads(raw or b"{}")
    return template


def fill_queue(db: ClaimedDb, template: dict[str, Any], count: int) -> None:
    """Put ``count`` copies of ``template`` with fresh ids on the first queue."""
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

    wait_until("10% of the tasks", lambda: ticks() >= total // 10, 120, step=0.01)
    t1, c1 = time.monotonic(), ticks()
    wait_until("90% of the tasks", lambda: ticks() >= total * 9 // 10, 300, step=0.01)
    t2 = time.monotonic()
    return (ticks() - c1) / (t2 - t1)


def _steady_throughput(
    db: ClaimedDb,
    template: dict[str, Any],
    total: int,
    nodes: list[str],
    ready: Callable[[], bool] = lambda: True,
    watch: int | None = None,
) -> tuple[float, float]:
    """Once ``nodes`` answer pings and ``ready()`` holds, queue ``total`` tasks.

    Returns tasks/s, and the CPU % of a core process ``watch`` used meanwhile (0 without one).
    """
    wait_until("every worker answering", lambda: all(ping(db.url, n) for n in nodes), 90)
    wait_until("the console's first full frame", ready, 60)
    cpu0, began = (cpu_seconds(watch) if watch else 0.0), time.monotonic()
    fill_queue(db, template, total)
    rate = _throughput(db, total)
    used = (cpu_seconds(watch) - cpu0) if watch else 0.0
    return rate, 100 * used / (time.monotonic() - began)


def overhead(plan: Plan, launcher: Launcher, db: ClaimedDb, tmp: Path, out: Results) -> None:
    """Two workers (concurrency 2) draining one backlog under the console, then by hand.

    Each side starts first and is measured in its steady state: the backlog is queued once
    every worker answers a ping (and, under the console, once its first frame listing them is
    drawn), so start-up costs are not counted on either side.
    """
    say(f"overhead: 2 workers x {plan.overhead_tasks:,} tasks, {plan.overhead_runs} runs each")
    db.clear()
    template = message_template(make_app(db.url), db)
    host = os.uname().nodename
    for run in range(plan.overhead_runs):
        order = ("console", "by hand") if run % 2 == 0 else ("by hand", "console")
        for mode in order:
            db.clear()
            if mode == "console":
                console = ConsoleUnderTest(
                    launcher, db.url, tmp / f"over{run}", workers=2, concurrency=2, expect=2
                )
                nodes = [f"cw-{n}@{host}" for n in (1, 2)]
                took, cpu = _steady_throughput(
                    db,
                    template,
                    plan.overhead_tasks,
                    nodes,
                    console.drawn,
                    watch=console.pid,
                )
                out.add("overhead console cpu", cpu)
                console.stop()
            else:
                procs, nodes = start_workers(launcher, db.url, tmp, 2, concurrency=2, prefix="ow")
                took, _ = _steady_throughput(db, template, plan.overhead_tasks, nodes)
                for proc in procs:
                    launcher.stop(proc, grace=10)
            out.add(f"overhead {mode}", took)
            say(f"overhead run {run + 1} {mode}: {took:.0f} tasks/s")
