"""``serve`` (the supervisor server in the foreground) and ``ctl`` (the scriptable client)."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import click

from console.actions import ActionResult
from console.broker.urls import redact_url
from console.jobs import JobView
from console.metrics.options import metrics_options
from console.server.client import NoServer, ServerClient, ServerGone, ServerRefused
from console.server.protocol import (
    EXIT_FAILED,
    EXIT_NO_SERVER,
    EXIT_OK,
    EXIT_PENDING,
    MAX_WAIT,
)

EXIT_FATAL = 2
"""``ctl status`` and ``status``: a program is FATAL."""
DEFAULT_WAIT = 600.0
"""Seconds ``ctl`` waits for an action's job by default."""


@click.command("serve")
@click.option("--background", is_flag=True, hidden=True, help="Started by a TUI: no stderr log.")
@metrics_options
@click.pass_obj
def serve(
    obj: Any,
    background: bool,
    metrics: str | None,
    metrics_public: bool,
    metrics_hostname: str | None,
) -> None:
    """Run the supervisor server in the foreground (for systemd, supervisord or a container).

    Logs to stderr and to console.log in the state directory; SIGTERM or SIGINT stops every
    program warmly. Under systemd (Type=notify) it reports READY, STATUS and WATCHDOG.
    """
    from console.metrics.options import metrics_address, with_metrics_options
    from console.server.lifecycle import serve as run_server

    settings = with_metrics_options(obj.settings, metrics, metrics_public, metrics_hostname)
    metrics_address(settings)  # a refused address stops here, before anything starts
    run_server(settings, to_stderr=not background)


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"error: {redact_url(message)}", err=True)
    sys.exit(code)


@contextmanager
def _connected(obj: Any) -> Iterator[ServerClient]:
    try:
        client = ServerClient(obj.settings.state_dir)
    except NoServer as exc:
        _fail(str(exc), EXIT_NO_SERVER)
    except ServerRefused as exc:
        _fail(str(exc), EXIT_FAILED)
    try:
        client.hello(read_only=obj.ctl_read_only, client="ctl")
        yield client
    except ServerRefused as exc:
        _fail(str(exc), EXIT_FAILED)
    except ServerGone as exc:
        _fail(f"the server went away: {exc}", EXIT_FAILED)
    except TimeoutError as exc:
        _fail(str(exc), EXIT_FAILED)
    finally:
        client.close()


def _act(obj: Any, action: str, **args: Any) -> None:
    """Ask for an action as a job; wait for it (unless ``--no-wait``) and exit by its result."""
    wait = 0.0 if obj.ctl_no_wait else obj.ctl_timeout
    with _connected(obj) as client:
        job = client.act(action, args, wait=wait, key=obj.ctl_key)
    _exit_with(job, waited=not obj.ctl_no_wait)


def _exit_with(job: JobView, *, waited: bool) -> NoReturn:
    if not waited and not job.state.finished:
        click.echo(f"job {job.id} {job.state}: {job.action}")
        sys.exit(EXIT_OK)
    result = job.result
    if result is None:
        _fail(f"still running as job {job.id} ({job.action}); see: ctl job {job.id}", EXIT_PENDING)
    if result.ok:
        click.echo(result.message)
        sys.exit(EXIT_OK)
    _fail(result.message, EXIT_FAILED)


@click.group("ctl")
@click.option("--read-only", is_flag=True, help="Refuse every action (for watching only).")
@click.option("--no-wait", is_flag=True, help="Print the action's job id and return at once.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, max=MAX_WAIT),
    default=DEFAULT_WAIT,
    show_default=True,
    help="Seconds to wait for an action's job (then exit 4: still running).",
)
@click.option(
    "--key",
    metavar="KEY",
    help="Idempotency key: a retried request with the same key returns the first one's job.",
)
@click.pass_obj
def ctl(obj: Any, read_only: bool, no_wait: bool, timeout: float, key: str | None) -> None:
    """Control the running server.

    Every action runs as a job (id, state, result). Exit codes: 0 done, 1 refused or failed,
    2 usage (and for status: a program is FATAL), 3 no server, 4 still running after --timeout.
    """
    if key is not None and not 1 <= len(key) <= 128:
        raise click.BadParameter("1 to 128 characters", param_hint="--key")
    obj.ctl_read_only = read_only
    obj.ctl_no_wait = no_wait
    obj.ctl_timeout = timeout
    obj.ctl_key = key


@ctl.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--jobs", type=click.IntRange(0, 200), default=10, show_default=True)
@click.pass_obj
def ctl_status(obj: Any, as_json: bool, jobs: int) -> None:
    """Every program with its state, pid and uptime, and the last jobs; exit 2 if one is FATAL."""
    with _connected(obj) as client:
        reply = client.request("status", jobs=jobs)
    processes = reply["processes"]
    fatal = any(p["state"] == "FATAL" for p in processes)
    if as_json:
        body = {"server": reply["server"], "clients": reply["clients"], "processes": processes}
        body["jobs"] = reply.get("jobs", [])
        click.echo(json.dumps(body, indent=2))
        sys.exit(EXIT_FATAL if fatal else EXIT_OK)
    for p in processes:
        since = duration(p["uptime"]) if p["uptime"] else "-"
        pid = p["pid"] or "-"
        click.echo(f"{p['name']:<20} {p['state']:<9} pid {pid!s:<8} uptime {since}")
    for job in reply.get("jobs", [])[:jobs]:
        click.echo(job_line(JobView.from_json(job)))
    sys.exit(EXIT_FATAL if fatal else EXIT_OK)


def duration(seconds: float) -> str:
    """An uptime as ``HH:MM:SS``, with days in front past one (``3d 04:05:06``)."""
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    clock = f"{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
    return f"{days}d {clock}" if days else clock


def job_line(job: JobView) -> str:
    """One job in a line: ``job 12 done  restart worker-1 (by root): worker-1 replaced``."""
    text = job.message or job.progress
    return f"job {job.id:<5} {job.state!s:<8} {job.action} (by {job.who or '?'})" + (
        f": {text}" if text else ""
    )


@ctl.command("job")
@click.argument("job_id", type=click.IntRange(min=1))
@click.option("--wait", "wait", type=click.FloatRange(0, MAX_WAIT), default=0.0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def ctl_job(obj: Any, job_id: int, wait: float, as_json: bool) -> None:
    """One job: its state and result (exit 0 done, 1 refused or failed, 4 not finished)."""
    with _connected(obj) as client:
        job = client.job(job_id, wait=wait)
    if as_json:
        click.echo(json.dumps(job.to_json(), indent=2))
    else:
        click.echo(job_line(job))
    if job.result is None:
        sys.exit(EXIT_PENDING)
    sys.exit(EXIT_OK if job.result.ok else EXIT_FAILED)


@ctl.command("jobs")
@click.option("-n", "count", type=click.IntRange(1, 200), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def ctl_jobs(obj: Any, count: int, as_json: bool) -> None:
    """The last jobs, newest first."""
    with _connected(obj) as client:
        reply = client.request("jobs", count=count)
    if as_json:
        click.echo(json.dumps(reply["jobs"], indent=2))
        return
    for job in reply["jobs"]:
        click.echo(job_line(JobView.from_json(job)))


_TARGETED = {
    "start": "Start a program, or every program of a group.",
    "stop": "Stop a program (warm), or every program of a group.",
    "restart": "Restart a program, or every program of a group (running workers start-first).",
}


def _targeted(action: str, help_text: str) -> click.Command:
    @click.argument("target")
    @click.pass_obj
    def command(obj: Any, target: str) -> None:
        _act(obj, action, target=target)

    return click.command(action, help=help_text)(command)


for _action, _help in _TARGETED.items():
    ctl.add_command(_targeted(_action, _help))


@ctl.command("scale")
@click.argument("group")
@click.argument("count", type=click.IntRange(min=0))
@click.pass_obj
def ctl_scale(obj: Any, group: str, count: int) -> None:
    """Set how many processes a worker group runs."""
    _act(obj, "scale_to", group=group, count=count)


@ctl.command("rolling-restart")
@click.argument("group", required=False)
@click.pass_obj
def ctl_rolling_restart(obj: Any, group: str | None) -> None:
    """Restart a group's workers one at a time, each replacement answering before the next."""
    _act(obj, "rolling_restart", group=group)


@ctl.command("tail")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines.")
@click.option("-n", "--lines", type=click.IntRange(min=0), default=10, show_default=True)
@click.argument("name")
@click.pass_obj
def ctl_tail(obj: Any, follow: bool, lines: int, name: str) -> None:
    """A program's merged output (stdout and stderr), optionally followed live.

    The server also keeps it in ``logs/NAME.log`` in the state directory.
    """
    ended = threading.Event()
    why: list[str] = []

    def on_line(message: dict[str, Any]) -> None:
        if message.get("type") == "line":
            click.echo(message["line"])
        else:
            why.append(str(message.get("message") or "the server stopped"))
            ended.set()

    with _connected(obj) as client:
        client.on_line = on_line
        reply = client.request("tail", name=name, lines=lines, follow=follow)
        for line in reply.get("lines", []):
            click.echo(line)
        if not follow:
            return
        try:
            while not ended.wait(0.5):
                pass
        except KeyboardInterrupt:
            return
    _fail(why[0] if why else "the server stopped", EXIT_FAILED)


@ctl.command("shutdown")
@click.option("--now", is_flag=True, help="Do not wait for tasks in flight.")
@click.pass_obj
def ctl_shutdown(obj: Any, now: bool) -> None:
    """Stop every program (warm unless --now), then the server."""
    with _connected(obj) as client:
        reply = client.request("shutdown", timeout=None, now=now)
    result = ActionResult.from_json(reply["result"])
    click.echo(result.message)
    sys.exit(EXIT_OK if result.ok else EXIT_FAILED)


def register(group: click.Group) -> None:
    """Attach ``serve`` and ``ctl`` to the main command group."""
    group.add_command(serve)
    group.add_command(ctl)
