"""Starting the supervisor server: in the foreground (``serve``) or in the background for a TUI."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from console.appref import load_app
from console.broker.embedded import EmbeddedBroker, EmbeddedBrokerError
from console.consolelog import LOGGER, RedactingFormatter, setup_console_log
from console.server.client import NoServer, ServerClient
from console.server.notify import SystemdNotifier
from console.server.protocol import socket_path
from console.server.server import SupervisorServer
from console.settings import Settings
from console.snapshot import DashboardData
from console.statedir import ConsoleAlreadyRunning, ConsoleLock, ensure_private_dir
from console.supervision.model import ProcessState

if TYPE_CHECKING:
    from console.metrics.exporter import MetricsExporter
    from console.runtime import ConsoleRuntime

log = logging.getLogger("sentry_console.server")

START_LOG = "server.out"
"""Where a server started in the background writes what it prints (its start-up errors)."""
BROKER_FLAG_ENV = "SENTRY_CONSOLE_BROKER_FLAG"
"""How a TUI hands its ``--broker`` to the server it starts (never on a command line)."""
STARTING_WAIT = 10.0
"""How long a TUI waits for a server that holds the state dir but does not listen yet."""
SETTLING = (ProcessState.STARTING, ProcessState.BACKOFF)


class ServerAlreadyRunning(RuntimeError):
    """Another server holds this state directory."""


def start_own_broker(settings: Settings, wait: float = 15.0) -> EmbeddedBroker:
    """Start the embedded broker for this server.

    A short-lived command (``send-events``, ``queues list``) may have one running for its own
    use; it goes away when that command ends, so wait for it rather than borrow it.
    """
    embedded = EmbeddedBroker(settings.state_dir)
    deadline = time.monotonic() + wait
    while True:
        embedded.start()
        if embedded.owned:
            return embedded
        if time.monotonic() > deadline:
            raise EmbeddedBrokerError("the embedded broker is held by another command; try again")
        time.sleep(0.2)


def programs_status(data: DashboardData) -> str:
    """One line for systemd's STATUS=: how many programs are in which state."""
    counts: dict[str, int] = {}
    for p in data.processes:
        counts[str(p.state)] = counts.get(str(p.state), 0) + 1
    states = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no programs"
    return f"{states}; broker {data.broker.state}"


def settled(data: DashboardData) -> bool:
    """True once every program has passed its startsecs or failed."""
    return all(p.state not in SETTLING for p in data.processes)


def log_to_stderr() -> None:
    """Also log to stderr (``serve`` in the foreground, for journald or a container)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.getLogger(LOGGER).addHandler(handler)


def serve(settings: Settings, *, to_stderr: bool) -> None:
    """Run the server until ``ctl shutdown``, ``q`` in a TUI, SIGTERM or SIGINT."""
    # The engine (celery, kombu, the broker clients) is loaded by the server only: a TUI
    # imports this module to start one, and must not carry the engine's imports.
    from console.runtime import ConsoleRuntime

    lock = ConsoleLock(settings.state_dir)  # makes (or checks) the private state directory
    try:
        lock.acquire()
    except ConsoleAlreadyRunning as exc:
        holder = f"pid {exc.pid}" if exc.pid > 0 else "an unknown pid"
        raise ServerAlreadyRunning(
            f"a sentry-console server ({holder}) is already running for {settings.state_dir}"
        ) from None
    setup_console_log(settings.state_dir)
    if to_stderr:
        log_to_stderr()
    notifier = SystemdNotifier.from_env()
    embedded: EmbeddedBroker | None = None
    runtime: ConsoleRuntime | None = None
    server: SupervisorServer | None = None
    metrics: MetricsExporter | None = None
    try:
        if settings.broker is None:
            embedded = start_own_broker(settings)
            settings = settings.with_broker(embedded.url, "embedded")
        assert settings.broker is not None
        app = load_app(settings.app, settings.broker.raw)
        runtime = ConsoleRuntime(settings, app)
        server = SupervisorServer(runtime)
        server.listen()
        if settings.metrics is not None:  # prometheus_client and http.server only when asked
            from console.metrics.exporter import start_metrics

            metrics = start_metrics(settings, runtime)  # a port in use fails before programs start
        runtime.start()
        log.info("server pid %d up, broker %s", os.getpid(), settings.redacted_broker_url)
        _watch(server, notifier)
        _trap_signals(server)
        server.serve_forever()
    finally:
        if server is not None:
            server.stopping.set()
        notifier.stopping()
        if runtime is not None:
            runtime.shutdown()
        if metrics is not None:
            metrics.stop()
        if server is not None:
            server.close()
        lock.release()
        if embedded is not None:
            embedded.stop()
        notifier.close()
        log.info("server pid %d stopped", os.getpid())


def _watch(server: SupervisorServer, notifier: SystemdNotifier) -> None:
    """READY once the programs settle, STATUS as they change, WATCHDOG from the poll loop."""

    def on_poll(data: DashboardData) -> None:
        notifier.watchdog()
        if server.stopping.is_set():
            return
        line = programs_status(data)
        if not notifier.ready_sent and settled(data):
            notifier.ready(line)
            log.info("ready: %s", line)
        elif notifier.ready_sent:
            notifier.status(line)

    server.on_poll = on_poll
    server.on_stopping = notifier.stopping


def _trap_signals(server: SupervisorServer) -> None:
    """SIGTERM and SIGINT stop every program warmly, a second one at once (the warm stop
    under way escalates); SIGHUP is ignored (no terminal here)."""

    def on_signal(signum: int, _frame: object) -> None:
        name = signal.Signals(signum).name
        warm = not server.stopping.is_set()
        log.info("%s: stopping %s", name, "warmly" if warm else "now")
        stop = threading.Thread(target=server.shutdown, args=(warm, name), name="signal-stop")
        stop.daemon = True
        stop.start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)


def start_background_server(
    settings: Settings, app_path: str | None, broker_flag: str | None, wait: float = 60.0
) -> ServerClient:
    """Start ``sentry-console serve`` in its own session and connect to it once it listens."""
    ensure_private_dir(settings.state_dir)
    out_path = settings.state_dir / START_LOG
    command = [sys.executable, "-m", "console"]
    if app_path:
        command += ["--app", app_path]
    if settings.reload:
        command += ["--reload"]
    command += ["serve", "--background"]
    env = dict(os.environ)
    if broker_flag:
        env[BROKER_FLAG_ENV] = broker_flag
    with open(out_path, "wb") as out:
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            env=env,
        )
    deadline = time.monotonic() + wait
    while True:
        try:
            return ServerClient(settings.state_dir)
        except NoServer:
            pass
        code = proc.poll()
        if code is not None:
            raise EmbeddedBrokerError(_start_error(out_path, code))
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            raise EmbeddedBrokerError(f"the server did not start in {wait:.0f}s; see {out_path}")
        time.sleep(0.02)


def _start_error(out_path: Path, code: int) -> str:
    with contextlib.suppress(OSError):
        lines = [ln.strip() for ln in out_path.read_text(errors="replace").splitlines()]
        errors = [ln for ln in lines if ln.startswith("error:")] or [ln for ln in lines if ln]
        if errors:
            return errors[-1].removeprefix("error: ")
    return f"the server exited with status {code}"


def connect_or_start(
    settings: Settings, app_path: str | None, broker_flag: str | None
) -> tuple[ServerClient, bool]:
    """A connection to this configuration's server, starting one first when none runs."""
    try:
        return ServerClient(settings.state_dir), False
    except NoServer:
        pass
    holder = ConsoleLock.held_by_other(settings.state_dir)
    if holder is not None:  # a server starting up right now: wait for its socket
        deadline = time.monotonic() + STARTING_WAIT
        while time.monotonic() < deadline:
            with contextlib.suppress(NoServer):
                return ServerClient(settings.state_dir), False
            if ConsoleLock.held_by_other(settings.state_dir) is None:
                break
            time.sleep(0.05)
        else:
            raise ServerAlreadyRunning(
                f"another sentry-console is already running here (pid {holder}) "
                f"and does not answer on {socket_path(settings.state_dir)}"
            )
    return start_background_server(settings, app_path, broker_flag), True
