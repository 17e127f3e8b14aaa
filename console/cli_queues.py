"""Headless commands for operators and scripts: ``queues list|purge`` and ``status``.

The broker probes are imported by the commands that use them: every ``sentry-console`` command
imports this module, and ``ctl`` and an attached TUI must not load the engine's imports.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import click

from console.appref import app_queue_names, transport_options
from console.broker.capacity import BrokerCapacity, memory_json, warnings_json
from console.broker.errors import BrokerUnavailable
from console.broker.models import BrokerHealth, QueueDepth
from console.consolelog import audit, log_path, setup_console_log
from console.settings import Settings
from console.statedir import ConsoleLock
from console.statusfile import read_status

if TYPE_CHECKING:
    from celery import Celery

PURGE_TIMEOUT = 5.0


def _depths(settings: Settings, app: Celery, names: list[str]) -> dict[str, QueueDepth]:
    from console.broker.depth import make_depth_probe

    assert settings.broker is not None
    probe = make_depth_probe(settings.broker, transport_options(app))
    try:
        return probe.poll(names)
    finally:
        probe.close()


def _check_health(settings: Settings) -> BrokerHealth:
    from console.broker.health import BrokerHealthProbe

    assert settings.broker is not None
    probe = BrokerHealthProbe(settings.broker)
    try:
        return probe.check()
    finally:
        probe.close()


def _require_up(settings: Settings) -> BrokerHealth:
    health = _check_health(settings)
    if health.state != "connected":
        raise BrokerUnavailable(f"broker {settings.redacted_broker_url} is down: {health.reason}")
    return health


def _depth_json(d: QueueDepth) -> dict[str, Any]:
    return {
        "name": d.name,
        "ready": d.ready,
        "consumers": d.consumers,
        "unacked": d.unacked,
        "exists": d.exists,
    }


@click.group()
def queues() -> None:
    """Inspect and purge the app's queues."""


@queues.command("list")
@click.option("-S", "--sort-size", is_flag=True, help="Sort by number of messages.")
@click.option("-r", "--reverse", is_flag=True, help="Reverse the order.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (see README for the shape).")
@click.pass_obj
def queues_list(obj: Any, sort_size: bool, reverse: bool, as_json: bool) -> None:
    """Print one `name count` line per queue."""
    with obj.broker() as settings:
        _require_up(settings)
        app = obj.app(settings)
        depths = list(_depths(settings, app, app_queue_names(app)).values())
    if sort_size:
        depths.sort(key=lambda d: (d.ready or 0, d.name))
    else:
        depths.sort(key=lambda d: d.name)
    if reverse:
        depths.reverse()
    if as_json:
        click.echo(json.dumps({"queues": [_depth_json(d) for d in depths]}, indent=2))
        return
    for d in depths:
        click.echo(f"{d.name} {d.ready if d.exists else 'missing'}")


@queues.command("purge")
@click.option("-f", "--force", is_flag=True, help="Do not ask for confirmation.")
@click.argument("queue")
@click.pass_obj
def queues_purge(obj: Any, force: bool, queue: str) -> None:
    """Delete every message waiting in QUEUE."""
    if not force and not sys.stdin.isatty():
        raise click.ClickException("refusing to purge without a terminal; use -f")
    with obj.broker() as settings:
        _require_up(settings)
        app = obj.app(settings)
        known = app_queue_names(app)
        if queue not in known:
            raise click.ClickException(f"unknown queue {queue!r} (known: {', '.join(known)})")
        if not force:
            click.confirm(f"Purge every message in {queue!r}?", abort=True)
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=PURGE_TIMEOUT)
            removed = conn.default_channel.queue_purge(queue) or 0
        setup_console_log(settings.state_dir)
        audit(f"purge {queue} (command line)", f"{removed:,} messages")
    click.echo(f"purged {removed} messages from {queue}")


def _workers(app: Celery) -> list[dict[str, Any]]:
    from console.cluster import RemoteControl
    from console.cluster.tidy import leave_as_found

    with leave_as_found(app):
        control = RemoteControl(app, timeout=1.0)
        try:
            replies = control.ping()
        finally:
            control.close()
    return [{"hostname": h, "online": ok} for h, ok in sorted(replies.items())]


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (see README for the shape).")
@click.pass_obj
def status(obj: Any, as_json: bool) -> None:
    """Broker, queues, workers and a running console's processes.

    Exit 1 when the broker is down, else 2 when a supervised program is FATAL, else 0.
    """
    with obj.broker() as settings:
        assert settings.broker is not None
        health = _check_health(settings)
        up = health.state == "connected"
        queue_rows: list[dict[str, Any]] = []
        workers: list[dict[str, Any]] = []
        capacity: BrokerCapacity | None = None
        if up:
            from console.broker.capacity_monitor import read_capacity_once
            from console.broker.redis_capacity import app_routes

            app = obj.app(settings)
            names = app_queue_names(app)
            depths = _depths(settings, app, names)
            capacity = read_capacity_once(
                settings.broker,
                transport_options(app),
                app_routes(app),
                names,
                api=settings.rabbitmq_api,
            )
            queue_rows = [_with_capacity(_depth_json(d), capacity) for d in depths.values()]
            workers = _workers(app)
    console_pid = ConsoleLock.held_by_other(settings.state_dir)
    snapshot = read_status(settings.state_dir) if console_pid else None
    processes: list[dict[str, Any]] = (snapshot or {}).get("processes", [])
    report = {
        "broker": {
            "url": settings.redacted_broker_url,
            "source": settings.broker_source,
            "state": health.state,
            "reason": health.reason,
            "rtt_ms": health.rtt_ms,
            "server_version": health.server_version,
            "memory": memory_json(capacity.memory if capacity else None),
            "blocked": capacity.blocked if capacity else None,
            "unacked": capacity.unacked if capacity else None,
            "unacked_overdue": capacity.overdue if capacity else None,
            "warnings": warnings_json(capacity),
            "notes": list(capacity.notes) if capacity else [],
        },
        "console": {
            "running": console_pid is not None,
            "pid": console_pid,
            "processes": processes,
            "errors": (snapshot or {}).get("errors", {}),
            "failures_5m": (snapshot or {}).get("failures_5m", 0),
            "log_file": str(log_path(settings.state_dir)),
        },
        "queues": queue_rows,
        "workers": workers,
    }
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        _print_status(report)
    if not up:
        url = settings.redacted_broker_url
        click.echo(f"error: broker {url} is {health.state}: {health.reason}", err=True)
        sys.exit(1)
    fatal = [p for p in processes if p.get("state") == "FATAL"]
    for p in fatal:
        click.echo(f"error: {p['name']} is FATAL: {p.get('reason') or 'see its output'}", err=True)
    if fatal:
        sys.exit(2)


def _with_capacity(row: dict[str, Any], capacity: BrokerCapacity | None) -> dict[str, Any]:
    """A queue's JSON row with its bytes, unacked and overdue counts and oldest message age."""
    q = capacity.queue(row["name"]) if capacity else None
    if row["unacked"] is None and q is not None:
        row["unacked"] = q.unacked
    row["bytes"] = q.bytes if q else None
    row["unacked_overdue"] = q.overdue if q else None
    row["oldest_age_seconds"] = round(q.oldest_age, 1) if q and q.oldest_age is not None else None
    return row


def _memory_line(memory: dict[str, Any]) -> str:
    """``memory    41.2M of 64.0M maxmemory (64%), policy allkeys-lru, full in 5m``."""
    used, limit = _mb(memory["used"]), _mb(memory["max"])
    line = f"memory    {used}"
    if memory["max"]:
        share = memory["used"] / memory["max"] if memory["used"] is not None else 0
        line += f" of {limit} {memory['limit_source']} ({share:.0%})"
    if memory["policy"]:
        line += f", policy {memory['policy']}"
    if memory["seconds_to_full"] is not None:
        line += f", full in {memory['seconds_to_full']:.0f}s"
    return line


def _mb(value: int | None) -> str:
    return "-" if value is None else f"{value / (1 << 20):.1f}M"


def _print_status(report: dict[str, Any]) -> None:
    b = report["broker"]
    line = f"broker    {b['url']}  {b['state']}"
    line += f" ({b['reason']})" if b["reason"] else ""
    line += f"  rtt {b['rtt_ms']:.1f}ms" if b["rtt_ms"] is not None else ""
    click.echo(line)
    if b.get("memory"):
        click.echo(_memory_line(b["memory"]))
    for w in b.get("warnings", []):
        click.echo(f"{w['level']:<9} {w['message']}")
    for note in b.get("notes", []):
        click.echo(f"note      {note}")
    c = report["console"]
    click.echo(f"console   {'running, pid ' + str(c['pid']) if c['running'] else 'not running'}")
    for p in c["processes"]:
        role = f"  {p['role']}" if p.get("role") else ""
        line = f"  {p['name']:<16} {p['state']:<9} pid {p['pid']}  restarts {p['restarts']}{role}"
        click.echo(line + (f"  ({p['reason']})" if p.get("reason") else ""))
    for q in report["queues"]:
        click.echo(f"queue     {q['name']:<28} {q['ready'] if q['exists'] else 'missing'}")
    for w in report["workers"]:
        click.echo(f"worker    {w['hostname']:<28} {'online' if w['online'] else 'offline'}")


def register(group: click.Group) -> None:
    """Attach these commands to the main command group."""
    group.add_command(queues)
    group.add_command(status)
