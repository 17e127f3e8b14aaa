"""The ``sentry-console`` command: the TUI by default, and Sentry's old commands beside it."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn

import click

from console.appref import AppLoadError, app_queue_names, ingest_task, load_app
from console.broker.embedded import EmbeddedBroker, EmbeddedBrokerError
from console.broker.errors import BrokerUnavailable
from console.broker.urls import BrokerURLError, redact_url
from console.server.lifecycle import ServerAlreadyRunning
from console.server.server import ServerError
from console.settings import Settings, SettingsError, resolve_settings
from console.statedir import StateDirError

if TYPE_CHECKING:
    from celery import Celery

KNOWN_ERRORS: tuple[type[Exception], ...] = (
    SettingsError,
    AppLoadError,
    BrokerURLError,
    BrokerUnavailable,
    EmbeddedBrokerError,
    StateDirError,  # ConsoleAlreadyRunning too
    ServerAlreadyRunning,
    ServerError,
)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print one redacted error line and exit."""
    click.echo(f"error: {redact_url(message)}", err=True)
    sys.exit(code)


class ConsoleGroup(click.Group):
    """A click group that turns known failures into one clear line instead of a traceback."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        """Run the CLI; usage errors too become one ``error: ...`` line (exit code 2)."""
        kwargs["standalone_mode"] = False
        try:
            result = super().main(*args, **kwargs)
        except click.exceptions.NoArgsIsHelpError as exc:
            click.echo(exc.ctx.get_help() if exc.ctx else str(exc), err=True)
            sys.exit(exc.exit_code)
        except click.UsageError as exc:
            command = exc.ctx.command_path if exc.ctx else "sentry-console"
            fail(f"{exc.format_message()} (see {command} --help)", exc.exit_code)
        except click.ClickException as exc:
            fail(exc.format_message(), exc.exit_code)
        except click.Abort:
            fail("aborted", 1)
        sys.exit(result if isinstance(result, int) else 0)

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command, reporting failures as ``error: ...``."""
        try:
            return super().invoke(ctx)
        except KNOWN_ERRORS as exc:
            fail(str(exc))
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except BrokenPipeError:
            raise  # the reader left (`status | head`): click ends quietly, exit 1
        except KeyboardInterrupt:
            fail("interrupted", 130)
        except Exception as exc:
            if os.environ.get("SENTRY_CONSOLE_DEBUG"):
                raise
            fail(f"unexpected {type(exc).__name__}: {exc}")


class Context:
    """What every subcommand needs: resolved settings, and the app once a broker is known."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app_path: str | None = None
        self.broker_flag: str | None = None
        self.ctl_read_only = False
        self.ctl_no_wait = False
        self.ctl_timeout = 600.0
        self.ctl_key: str | None = None

    @contextmanager
    def broker(self) -> Iterator[Settings]:
        """Settings with a concrete broker: the configured one, or the embedded one started here."""
        if self.settings.broker is not None:
            yield self.settings
            return
        embedded = EmbeddedBroker(self.settings.state_dir)
        embedded.start()
        try:
            yield self.settings.with_broker(embedded.url, "embedded")
        finally:
            embedded.stop()

    def app(self, settings: Settings) -> Celery:
        """The Celery app, configured for the resolved broker."""
        assert settings.broker is not None
        return load_app(settings.app, settings.broker.raw)


pass_context = click.make_pass_decorator(Context)


@click.group(cls=ConsoleGroup, invoke_without_command=True)
@click.option("--app", "app_path", default=None, help="Celery app import path [workers.app].")
@click.option("--broker", default=None, help="Broker URL (overrides SENTRY_BROKER_URL).")
@click.option("--read-only", is_flag=True, help="Watch only: every action refused, keys hidden.")
@click.option("--reload", is_flag=True, help="Restart workers and cron when the code changes.")
@click.version_option(package_name="sentry-console")
@click.pass_context
def main(
    ctx: click.Context, app_path: str | None, broker: str | None, read_only: bool, reload: bool
) -> None:
    """Supervise and watch Celery workers and cron. With no command, open the console.

    The programs belong to a supervisor server, one per state directory: the console attaches
    to it, starting it in the background when none runs. q stops everything, d detaches.
    """
    from console.server.lifecycle import BROKER_FLAG_ENV

    if broker is None:  # a TUI hands its --broker to the server it starts this way
        broker = os.environ.pop(BROKER_FLAG_ENV, None)
    try:
        settings = resolve_settings(cli_broker=broker, app=app_path, reload=reload)
    except (SettingsError, BrokerURLError) as exc:
        fail(str(exc))
    ctx.obj = Context(settings)
    ctx.obj.app_path, ctx.obj.broker_flag = app_path, broker
    if ctx.invoked_subcommand is None:
        from console.ui.launch import run_console

        run_console(settings, app_path=app_path, broker_flag=broker, read_only=read_only)


@main.group()
def run() -> None:
    """Run a worker or the cron process in the foreground."""


@run.command("worker")
@click.option("-Q", "--queues", default=None, help="Comma-separated queues to consume.")
@click.option("-X", "--exclude-queues", default=None, help="Comma-separated queues to skip.")
@click.option("-c", "--concurrency", type=click.IntRange(min=1), default=None, help="Pool size.")
@click.option("-n", "--hostname", default=None, help="Worker node name, e.g. worker-1@%h.")
@click.option("--max-tasks-per-child", type=click.IntRange(min=1), default=None)
@click.option("-l", "--loglevel", default="WARNING", show_default=True)
@pass_context
def run_worker(
    obj: Context,
    queues: str | None,
    exclude_queues: str | None,
    concurrency: int | None,
    hostname: str | None,
    max_tasks_per_child: int | None,
    loglevel: str,
) -> None:
    """Run a Celery worker for the app (what `sentry run worker` did)."""
    with obj.broker() as settings:
        app = obj.app(settings)
        known = app_queue_names(app)
        argv = ["worker", "-l", loglevel, "-E", "--without-gossip", "--without-mingle"]
        for flag, value in (("-Q", queues), ("-X", exclude_queues)):
            if value:
                names = [q.strip() for q in value.split(",") if q.strip()]
                unknown = [q for q in names if q not in known]
                if unknown:
                    fail(f"unknown queue {unknown[0]!r} (known: {', '.join(known)})")
                argv += [flag, ",".join(names)]
        if concurrency:
            argv += ["-c", str(concurrency)]
        if hostname:
            argv += ["-n", hostname]
        if max_tasks_per_child:
            argv += ["--max-tasks-per-child", str(max_tasks_per_child)]
        from console.programs import warm_shutdown_on_hangup

        warm_shutdown_on_hangup()
        app.worker_main(argv)


@run.command("cron")
@click.option("-l", "--loglevel", default="INFO", show_default=True)
@pass_context
def run_cron(obj: Context, loglevel: str) -> None:
    """Run the Celery beat scheduler for the app (what `sentry run cron` did)."""
    with obj.broker() as settings:
        app = obj.app(settings)
        settings.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        schedule = settings.state_dir / "celerybeat-schedule"
        argv = ["beat", "-l", loglevel, "-s", str(schedule)]
        if settings.cron_coordination:
            from console.cron.scheduler import coordinate

            argv += coordinate(app, settings)
        app.start(argv)


@main.command("send-events")
@click.option("--count", type=click.IntRange(min=1), default=100, show_default=True)
@click.option(
    "--rate", type=click.FloatRange(min=0, min_open=True), default=None, help="Per second."
)
@pass_context
def send_events_cmd(obj: Context, count: int, rate: float | None) -> None:
    """Enqueue synthetic error events, the way a web request would."""
    from console.broker.health import BrokerHealthProbe
    from console.eventgen import send_events

    with obj.broker() as settings:
        assert settings.broker is not None
        health = BrokerHealthProbe(settings.broker).check()
        if health.state != "connected":
            fail(f"broker {settings.redacted_broker_url} is down: {health.reason}")
        app = obj.app(settings)
        took = send_events(app, ingest_task(app), count, rate=rate)
    click.echo(f"sent {count} events in {took:.2f}s ({count / max(took, 1e-9):.0f}/s)")


from console import cli_queues  # noqa: E402  (registers the queues and status commands)

cli_queues.register(main)

from console import cli_server  # noqa: E402  (registers serve and ctl)

cli_server.register(main)

from console import cli_watch  # noqa: E402  (registers watch and control)

cli_watch.register(main)


@main.command("screenshots")
@click.option("--out", type=click.Path(file_okay=False, path_type=str), default="screenshots")
@click.option("--size", default="100x30", show_default=True, help="Terminal size COLSxROWS.")
def screenshots_cmd(out: str, size: str) -> None:
    """Export the console's screens as SVG files (frozen demo data)."""
    from pathlib import Path

    from console.ui.demo.screenshots import export_screenshots

    try:
        cols, rows = (int(v) for v in size.lower().split("x"))
    except ValueError:
        fail(f"--size must look like 100x30, not {size!r}")
    for path in export_screenshots(Path(out), (cols, rows)):
        click.echo(str(path))
