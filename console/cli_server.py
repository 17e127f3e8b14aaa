"""``serve`` (the supervisor server in the foreground) and ``ctl`` (the scriptable client)."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import click

from console.actions import ActionResult
from console.metrics.options import metrics_options
from console.server.client import NoServer, ServerClient, ServerGone, ServerRefused
from console.server.protocol import EXIT_FAILED, EXIT_NO_SERVER, EXIT_OK


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
    from console.metrics.exporter import metrics_address, with_metrics_options
    from console.server.lifecycle import serve as run_server

    settings = with_metrics_options(obj.settings, metrics, metrics_public, metrics_hostname)
    metrics_address(settings)  # a refused address stops here, before anything starts
    run_server(settings, to_stderr=not background)


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"error: {message}", err=True)
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


def _act(obj: Any, action: str, timeout: float | None = 60.0, **args: Any) -> None:
    with _connected(obj) as client:
        reply = client.request("action", timeout=timeout, action=action, args=args)
    result = ActionResult.from_json(reply["result"])
    if result.ok:
        click.echo(result.message)
        sys.exit(EXIT_OK)
    _fail(result.message, EXIT_FAILED)


@click.group("ctl")
@click.option("--read-only", is_flag=True, help="Refuse every action (for watching only).")
@click.pass_obj
def ctl(obj: Any, read_only: bool) -> None:
    """Control the running server: exit 0 done, 1 refused or failed, 2 usage, 3 no server."""
    obj.ctl_read_only = read_only


@ctl.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def ctl_status(obj: Any, as_json: bool) -> None:
    """Every program with its state, pid and uptime."""
    with _connected(obj) as client:
        reply = client.request("status")
    processes = reply["processes"]
    if as_json:
        body = {"server": reply["server"], "clients": reply["clients"], "processes": processes}
        click.echo(json.dumps(body, indent=2))
        return
    for p in processes:
        uptime = p["uptime"]
        since = time.strftime("%H:%M:%S", time.gmtime(uptime)) if uptime else "-"
        pid = p["pid"] or "-"
        click.echo(f"{p['name']:<20} {p['state']:<9} pid {pid!s:<8} uptime {since}")


@ctl.command("start")
@click.argument("target")
@click.pass_obj
def ctl_start(obj: Any, target: str) -> None:
    """Start a program, or every program of a group."""
    _act(obj, "start", target=target)


@ctl.command("stop")
@click.argument("target")
@click.pass_obj
def ctl_stop(obj: Any, target: str) -> None:
    """Stop a program (warm), or every program of a group."""
    _act(obj, "stop", target=target)


@ctl.command("restart")
@click.argument("target")
@click.pass_obj
def ctl_restart(obj: Any, target: str) -> None:
    """Restart a program, or every program of a group."""
    _act(obj, "restart", target=target)


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
    """Restart a group's workers one at a time (waits until done)."""
    _act(obj, "rolling_restart", timeout=None, group=group)


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
