"""``watch`` (the dashboard with nothing supervised) and ``control`` (one remote-control command).

Watch mode is for clusters whose workers run under systemd, Kubernetes or other consoles: every
worker on every host, and remote control of each, from any host that reaches the broker.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import click

from console.actions import ActionResult, Outcome
from console.appref import load_app
from console.cluster.models import host_of
from console.metrics.options import metrics_options
from console.settings import EVENT_MODES, Settings
from console.snapshot import DashboardData

if TYPE_CHECKING:  # the engine is imported by the commands that run it
    from console.runtime import ConsoleRuntime


def watch_settings(obj: Any) -> Settings:
    """The settings of watch mode; a broker must be configured (there is nothing to embed)."""
    if obj.settings.broker is None:
        raise click.ClickException(
            "watch needs a broker: set SENTRY_BROKER_URL, BROKER_URL in SENTRY_CONF, or --broker"
        )
    settings: Settings = obj.settings.watching()
    settings.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    return settings


@contextmanager
def watching(settings: Settings) -> Iterator[ConsoleRuntime]:
    """A runtime that supervises nothing, started, and stopped however the block ends."""
    from console.runtime import ConsoleRuntime

    assert settings.broker is not None
    runtime = ConsoleRuntime(settings, load_app(settings.app, settings.broker.raw))
    runtime.start()
    try:
        yield runtime
    finally:
        runtime.shutdown()


def watch_json(data: DashboardData) -> dict[str, Any]:
    """One refresh of watch mode as printed by ``watch --json`` (README documents the shape)."""
    return {
        "taken_at": data.taken_at,
        "broker": {
            "url": data.broker_url,
            "state": data.broker.state,
            "reason": data.broker.reason,
        },
        "cluster": {
            "state": data.cluster_state,
            "events": data.events,
            "events_received": data.events_received,
        },
        "workers": [
            {
                "hostname": w.hostname,
                "host": host_of(w.hostname),
                "online": w.online,
                "last_heartbeat": w.last_heartbeat,
                "pid": w.pid,
                "active": w.active,
                "processed": w.processed,
                "failed": w.failed,
                "pool_size": w.pool_size,
                "queues": list(w.queues),
            }
            for w in data.workers
        ],
        "active_tasks": [
            {"uuid": t.uuid, "name": t.name, "hostname": t.worker, "state": t.state}
            for t in data.active_tasks
        ],
        "queues": [
            {"name": q.name, "depth": q.ready, "consumers": q.consumers, "unacked": q.unacked}
            for q in data.queues
        ],
    }


def stream_json(runtime: ConsoleRuntime, interval: float, *, quiet: bool = False) -> None:
    """Print a JSON line per refresh until SIGTERM or SIGINT (``quiet``: only refresh)."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.is_set():
        data = runtime.poll()
        if quiet:
            stop.wait(interval)
            continue
        line = json.dumps(watch_json(data))
        try:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
        except BrokenPipeError:
            return
        stop.wait(interval)


@click.command("watch")
@click.option("--json", "as_json", is_flag=True, help="No screen: a JSON line per refresh.")
@click.option(
    "--events",
    type=click.Choice(EVENT_MODES),
    default=None,
    help="Subscribe to all events, or to worker events only (no task events; CONSOLE_EVENTS).",
)
@click.option("--headless", is_flag=True, help="No screen and no output: only --metrics.")
@metrics_options
@click.pass_obj
def watch(
    obj: Any,
    as_json: bool,
    events: str | None,
    headless: bool,
    metrics: str | None,
    metrics_public: bool,
    metrics_hostname: str | None,
) -> None:
    """Watch every worker of the cluster and control any of them, supervising nothing.

    For workers run by systemd, Kubernetes or consoles on other hosts. Needs a configured broker.
    """
    from console.metrics.exporter import start_metrics
    from console.metrics.options import metrics_address, with_metrics_options

    settings = watch_settings(obj)
    if events is not None:
        settings = replace(settings, events=events)
    settings = with_metrics_options(settings, metrics, metrics_public, metrics_hostname)
    if metrics_address(settings) is None and headless:
        raise click.UsageError("--headless needs --metrics (or CONSOLE_METRICS)")
    with watching(settings) as runtime:
        exporter = start_metrics(settings, runtime)
        try:
            if as_json or headless:
                stream_json(runtime, settings.refresh_interval, quiet=headless)
                return
            from console.ui.app import ConsoleApp, terminal_has_few_colours

            ConsoleApp(runtime, ansi=terminal_has_few_colours()).run()
        finally:
            if exporter is not None:
                exporter.stop()


@click.group("control")
def control() -> None:
    """Send one remote-control command to a worker of the cluster; prints the worker's reply.

    Exit 0 when the worker confirmed, 1 when it refused or did not answer.
    """


def _report(result: ActionResult) -> None:
    ok = result.outcome is Outcome.DONE
    click.echo(result.message, err=not ok)
    if not ok:
        sys.exit(1)


@contextmanager
def _runtime(obj: Any) -> Iterator[ConsoleRuntime]:
    from console.runtime import ConsoleRuntime

    settings = watch_settings(obj)
    assert settings.broker is not None
    # No monitors: one command needs only the control connection (and the monitor's task
    # table stays empty, so revoke asks the workers rather than judging from history).
    runtime = ConsoleRuntime(settings, load_app(settings.app, settings.broker.raw))
    try:
        yield runtime
    finally:
        runtime.control.close()


def _nonzero(_ctx: click.Context, _param: click.Parameter, value: int) -> int:
    if value == 0:
        raise click.BadParameter("must not be 0", param_hint="DELTA")
    return value


@dataclass(frozen=True)
class ControlCommand:
    """One ``control`` subcommand: its help, its arguments, and the remote-control call."""

    help: str
    args: tuple[str, ...]
    call: Callable[..., ActionResult]
    """The runtime, then the arguments by name, to the worker's answer."""
    options: tuple[click.Option, ...] = ()
    negative: bool = False
    """An argument may be a negative number (``pool NODE -1``), not an option."""


_CONTROL = {
    "pool": ControlCommand(
        "Grow (DELTA > 0) or shrink (DELTA < 0) the pool of worker NODE.",
        ("node", "delta"),
        lambda runtime, node, delta: runtime.pool(node, delta),
        negative=True,
    ),
    "pool-restart": ControlCommand(
        "Restart the pool processes of NODE (the worker must run with pool restarts enabled).",
        ("node",),
        lambda runtime, node: runtime.pool_restart(node),
    ),
    "consume": ControlCommand(
        "Make NODE start consuming from QUEUE.",
        ("node", "queue"),
        lambda runtime, node, queue: runtime.consume(node, queue, on=True),
    ),
    "cancel": ControlCommand(
        "Make NODE stop consuming from QUEUE.",
        ("node", "queue"),
        lambda runtime, node, queue: runtime.consume(node, queue, on=False),
    ),
    "shutdown": ControlCommand(
        "Warm shutdown of NODE: it finishes the tasks it runs, then exits.",
        ("node",),
        lambda runtime, node: runtime.shutdown_worker(node),
    ),
    "revoke": ControlCommand(
        "Revoke TASK_ID on every worker; with --terminate also stop it where it runs.",
        ("task_id",),
        lambda runtime, task_id, terminate: runtime.revoke(task_id, terminate=terminate),
        options=(
            click.Option(
                ["--terminate"], is_flag=True, help="Also kill the task where it runs (SIGTERM)."
            ),
        ),
    ),
}
"""Every ``control`` subcommand, by name."""


def _argument(name: str) -> click.Argument:
    if name == "delta":
        return click.Argument([name], type=int, callback=_nonzero)
    return click.Argument([name])


def _control_command(name: str, spec: ControlCommand) -> click.Command:
    @click.pass_obj
    def command(obj: Any, **args: Any) -> None:
        with _runtime(obj) as runtime:
            _report(spec.call(runtime, **args))

    return click.Command(
        name,
        callback=command,
        params=[*map(_argument, spec.args), *spec.options],
        help=spec.help,
        context_settings={"ignore_unknown_options": True} if spec.negative else None,
    )


for _name, _spec in _CONTROL.items():
    control.add_command(_control_command(_name, _spec))


def register(group: click.Group) -> None:
    """Add ``watch`` and ``control`` to the top-level command group."""
    group.add_command(watch)
    group.add_command(control)
