"""One settings object for the console: broker, programs to supervise, refresh rates.

Sources, highest first: command-line flags, environment variables, the Python file named by
``SENTRY_CONF`` (a file, or a directory holding ``sentry.conf.py``), built-in defaults.

Settings read from ``SENTRY_CONF``:

``BROKER_URL``
    The broker URL (``redis://``, ``rediss://``, ``redis+socket://``, ``amqp://``, ``pyamqp://``).
``CONSOLE_WORKERS``
    A list of worker groups, each a dict with the keys of :class:`WorkerGroup`, for example
    ``[{"name": "worker", "processes": 2, "queues": ["events.save_event"], "concurrency": 4}]``.
``CONSOLE_CRON``
    Whether the console runs a cron (beat) process (default ``True``).
``CONSOLE_REFRESH_INTERVAL``
    Seconds between refreshes of the screen's data (default 1.0).
``CONSOLE_LOG_LINES``
    Lines of output kept per process (default 10,000).
``CONSOLE_MAX_PROCESSES``
    Upper bound for scaling one worker group (default 32).
``CONSOLE_OFFLINE_DROP_AFTER``
    Seconds an offline worker stays listed (marked offline) before it is dropped (default 300).
``CONSOLE_RELOAD``
    Restart the workers and the cron when the app's source changes (default ``False``; the
    ``--reload`` flag turns it on too).
``CONSOLE_RELOAD_PATHS``
    More files or directories to watch besides the app's package; relative paths are taken
    from the directory of the configuration file.
``CONSOLE_RELOAD_PATTERNS``
    File name patterns that count as source (default ``["*.py"]``).
``CONSOLE_KEYMAP``
    Keys by binding id, replacing the defaults, e.g. ``{"restart": "ctrl+r", "rolling": "R,f5"}``.
``CONSOLE_CRON_COORDINATION``
    Whether cron processes agree through the broker on one sender, so each tick is sent once
    however many crons run (default ``True``; ``False`` gives Celery beat's own behaviour).
``CONSOLE_CRON_TAKEOVER``
    Seconds within which a standby cron takes over from a killed sender (default 5).
``CONSOLE_CRON_NAME``
    The cron lease's name: crons with the same name send each tick once between them (default:
    the app's name, default queue and a digest of its schedule's entries).
``CONSOLE_PROGRAM_LOG_BYTES``
    Size at which each program's log file (``logs/NAME.log`` in the state directory) rotates
    (default 10 MiB); 0 writes no log files.
``CONSOLE_PROGRAM_LOG_BACKUPS``
    Rotated program log files kept (``NAME.log.1`` ...; default 3).
``CONSOLE_EVENTS``
    Which Celery events the console subscribes to: ``"all"`` (default) or ``"workers"``, only
    worker heartbeats and online/offline, for hosts far from the broker: the broker then sends
    no task events to this console, which shows workers and their counts but no active tasks.
``CONSOLE_METRICS``
    Serve Prometheus metrics from ``serve`` and ``watch`` at this ``[HOST:]PORT``, e.g.
    ``"127.0.0.1:9818"`` (default ``None``: off; ``--metrics`` overrides it).
``CONSOLE_METRICS_PUBLIC``
    Allow ``CONSOLE_METRICS`` to bind an address other than loopback (default ``False``).
``CONSOLE_METRICS_HOSTNAME``
    What the ``hostname`` label holds: ``"host"`` (the node name's host part, as
    celery-exporter does; default), ``"node"`` (the whole node name) or ``"generic"``.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from console.broker.urls import BrokerURL, BrokerURLError, parse_broker_url
from console.conffile import (
    EVENT_MODES,
    SettingsError,
    conf_path,
    event_mode,
    keymap_setting,
    load_conf_file,
    metrics_settings,
    positive,
    reload_settings,
)
from console.statedir import default_state_dir

# SENTRY_CONF's reading is in console.conffile; these names are importable from here as before.
__all__ = [
    "DEFAULT_APP",
    "DEFAULT_HOSTNAME",
    "EVENT_MODES",
    "Settings",
    "SettingsError",
    "WorkerGroup",
    "conf_path",
    "console_id",
    "event_mode",
    "load_conf_file",
    "resolve_settings",
]

DEFAULT_APP = "workers.app"
DEFAULT_HOSTNAME = "{name}-{n}@%h"


def console_id(state_dir: Path) -> str:
    """A short, stable id of a state directory: empty for the default one."""
    state = Path(os.path.abspath(state_dir))
    if state == Path(os.path.abspath(default_state_dir())):
        return ""
    return hashlib.sha256(os.fsencode(state)).hexdigest()[:4]


@dataclass(frozen=True)
class WorkerGroup:
    """A group of identical worker processes the console supervises."""

    name: str = "worker"
    """Group name; processes are called ``<name>-<n>``."""
    processes: int = 1
    """How many worker processes to run."""
    queues: tuple[str, ...] = ()
    """Queues to consume (empty: every queue the app knows)."""
    exclude_queues: tuple[str, ...] = ()
    """Queues not to consume."""
    concurrency: int = 2
    """Pool processes per worker."""
    loglevel: str = "WARNING"
    """Celery log level of the worker."""
    hostname: str = DEFAULT_HOSTNAME
    """Worker node name; ``{name}``, ``{n}`` (process number) and ``{console}`` are filled in."""
    max_tasks_per_child: int | None = None
    """Recycle pool processes after this many tasks."""
    console: str = ""
    """A short id of the console's state directory, set by :class:`Settings` (see node_name)."""

    def node_name(self, n: int) -> str:
        """The Celery node name of process number ``n``.

        With the default template, a console on a state directory other than the default one
        adds its id (``worker-1.3fa2@host``), so two consoles on one host never share a name.
        """
        if self.hostname == DEFAULT_HOSTNAME and self.console:
            return f"{self.name}-{n}.{self.console}@%h"
        return self.hostname.format(name=self.name, n=n, console=self.console)


@dataclass(frozen=True)
class Settings:
    """Everything the console needs to know, resolved once at start-up."""

    broker: BrokerURL | None
    """The configured broker, or None for the embedded one."""
    broker_source: str
    """Where the broker came from: --broker, SENTRY_BROKER_URL, SENTRY_CONF or embedded."""
    app: str = DEFAULT_APP
    """Import path of the Celery app."""
    state_dir: Path = field(default_factory=default_state_dir)
    """Private directory for the embedded broker, the event store and the console lock."""
    worker_groups: tuple[WorkerGroup, ...] = (WorkerGroup(),)
    """Worker groups to supervise."""
    cron: bool = True
    """Whether a cron (beat) process runs."""
    refresh_interval: float = 1.0
    """Seconds between data refreshes in the UI."""
    log_lines: int = 10_000
    """Output lines kept per process."""
    max_processes: int = 32
    """Upper bound when scaling a worker group."""
    offline_drop_after: float = 300.0
    """Seconds an offline worker stays listed before it is dropped."""
    reload: bool = False
    """Restart workers and cron when a watched source file changes."""
    reload_paths: tuple[Path, ...] = ()
    """Files or directories watched besides the app's own package."""
    reload_patterns: tuple[str, ...] = ("*.py",)
    """File name patterns (fnmatch) of the files whose change triggers a reload."""
    keymap: tuple[tuple[str, str], ...] = ()
    """(binding id, keys) pairs replacing default keys; the UI checks ids and clashes."""
    cron_coordination: bool = True
    """Whether cron processes coordinate through the broker so each tick is sent once."""
    cron_takeover: float = 5.0
    """Seconds within which a standby cron replaces a killed sender."""
    cron_name: str | None = None
    """The cron lease's name (None: app name, default queue and the schedule's digest)."""
    rabbitmq_api: str | None = field(default=None, repr=False)
    """RabbitMQ management API URL (None: broker host, port 15672); may hold a password."""
    program_log_bytes: int = 10 * 1024 * 1024
    """Rotation size of each program's log file in ``state_dir/logs``; 0 writes none."""
    program_log_backups: int = 3
    """Rotated program log files kept."""
    watch: bool = False
    """Watch mode: nothing supervised, every worker of the cluster shown and controlled."""
    events: str = "all"
    """Events subscribed to: ``all``, or ``workers`` (worker events only: no task events)."""
    metrics: str | None = None
    """``[HOST:]PORT`` of the Prometheus listener (None: no metrics)."""
    metrics_public: bool = False
    """Whether the metrics listener may bind an address other than loopback."""
    metrics_hostname: str = "host"
    """The ``hostname`` label: ``host`` (host part), ``node`` (node name) or ``generic``."""

    def __post_init__(self) -> None:
        ident = console_id(self.state_dir)
        if any(g.console != ident for g in self.worker_groups):
            groups = tuple(replace(g, console=ident) for g in self.worker_groups)
            object.__setattr__(self, "worker_groups", groups)

    @property
    def redacted_broker_url(self) -> str:
        """The broker URL as it may be shown: password replaced by ``***``."""
        return self.broker.redacted if self.broker else "embedded"

    def watching(self) -> Settings:
        """A copy for watch mode: no programs, no reload, and a state directory of its own
        (``watch/`` inside this one) so a watch never touches a console's files."""
        return replace(
            self,
            worker_groups=(),
            cron=False,
            reload=False,
            watch=True,
            state_dir=self.state_dir / "watch",
        )

    def with_broker(self, url: str, source: str) -> Settings:
        """A copy with the broker replaced (used once the embedded broker is up)."""
        return replace(self, broker=parse_broker_url(url), broker_source=source)


def _parse(url: Any, source: str) -> BrokerURL:
    if not isinstance(url, str):
        raise SettingsError(f"{source}: BROKER_URL must be a string, not {type(url).__name__}")
    try:
        return parse_broker_url(url)
    except BrokerURLError as exc:
        raise SettingsError(f"{source}: {exc}") from None


def _worker_groups(raw: Any) -> tuple[WorkerGroup, ...]:
    if not isinstance(raw, (list, tuple)) or not raw:
        raise SettingsError("SENTRY_CONF: CONSOLE_WORKERS must be a non-empty list of dicts")
    groups = []
    known = set(WorkerGroup.__dataclass_fields__) - {"console"}
    for item in raw:
        if not isinstance(item, dict):
            raise SettingsError("SENTRY_CONF: each CONSOLE_WORKERS entry must be a dict")
        unknown = set(item) - known
        if unknown:
            raise SettingsError(f"SENTRY_CONF: unknown worker setting {sorted(unknown)[0]!r}")
        values = dict(item)
        for key in ("queues", "exclude_queues"):
            if key in values:
                values[key] = tuple(values[key])
        group = WorkerGroup(**values)
        if group.processes < 0 or group.concurrency < 1:
            raise SettingsError(
                f"SENTRY_CONF: worker group {group.name!r} needs processes >= 0, concurrency >= 1"
            )
        groups.append(group)
    names = [g.name for g in groups]
    if len(set(names)) != len(names):
        raise SettingsError("SENTRY_CONF: worker group names must be unique")
    return tuple(groups)


def resolve_settings(
    *,
    cli_broker: str | None = None,
    app: str | None = None,
    reload: bool = False,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Resolve settings from flags, environment and SENTRY_CONF, in that order of precedence."""
    env = os.environ if env is None else env
    conf: dict[str, Any] = {}
    base = Path.cwd()
    if env.get("SENTRY_CONF"):
        conf = load_conf_file(env["SENTRY_CONF"])
        base = conf_path(env["SENTRY_CONF"]).resolve().parent

    broker: BrokerURL | None
    if cli_broker is not None:
        broker, source = _parse(cli_broker, "--broker"), "--broker"
    elif env.get("SENTRY_BROKER_URL"):
        broker, source = _parse(env["SENTRY_BROKER_URL"], "SENTRY_BROKER_URL"), "SENTRY_BROKER_URL"
    elif "BROKER_URL" in conf:
        broker, source = _parse(conf["BROKER_URL"], "SENTRY_CONF"), "SENTRY_CONF"
    else:
        broker, source = None, "embedded"

    state_dir = (
        Path(env["SENTRY_CONSOLE_STATE_DIR"]) if env.get("SENTRY_CONSOLE_STATE_DIR") else None
    )
    cron = conf.get("CONSOLE_CRON", True)
    if not isinstance(cron, bool):
        raise SettingsError("SENTRY_CONF: CONSOLE_CRON must be True or False")
    coordination = conf.get("CONSOLE_CRON_COORDINATION", True)
    if not isinstance(coordination, bool):
        raise SettingsError("SENTRY_CONF: CONSOLE_CRON_COORDINATION must be True or False")
    kwargs: dict[str, Any] = {
        "broker": broker,
        "broker_source": source,
        "app": app or DEFAULT_APP,
        "cron": cron,
        "refresh_interval": positive(conf, "CONSOLE_REFRESH_INTERVAL", 1.0, float),
        "log_lines": positive(conf, "CONSOLE_LOG_LINES", 10_000, int),
        "max_processes": positive(conf, "CONSOLE_MAX_PROCESSES", 32, int),
        "offline_drop_after": positive(conf, "CONSOLE_OFFLINE_DROP_AFTER", 300.0, float),
        **reload_settings(conf, base, reload),
        "cron_coordination": coordination,
        "cron_takeover": positive(conf, "CONSOLE_CRON_TAKEOVER", 5.0, float),
        "events": event_mode(conf.get("CONSOLE_EVENTS", "all")),
    }
    if env.get("SENTRY_CONSOLE_REFRESH"):
        try:
            kwargs["refresh_interval"] = float(env["SENTRY_CONSOLE_REFRESH"])
        except ValueError:
            raise SettingsError("SENTRY_CONSOLE_REFRESH must be a number of seconds") from None
        if kwargs["refresh_interval"] <= 0:
            raise SettingsError("SENTRY_CONSOLE_REFRESH must be a positive number of seconds")
    api = env.get("SENTRY_CONSOLE_RABBITMQ_API") or conf.get("CONSOLE_RABBITMQ_API")
    if api is not None:
        if not isinstance(api, str) or not api.startswith(("http://", "https://")):
            raise SettingsError("CONSOLE_RABBITMQ_API must be an http:// or https:// URL")
        kwargs["rabbitmq_api"] = api
    kwargs |= metrics_settings(conf)
    if "CONSOLE_WORKERS" in conf:
        kwargs["worker_groups"] = _worker_groups(conf["CONSOLE_WORKERS"])
    if state_dir is not None:
        kwargs["state_dir"] = state_dir
    if "CONSOLE_CRON_NAME" in conf:
        name = conf["CONSOLE_CRON_NAME"]
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.:-]{1,100}", name):
            raise SettingsError("SENTRY_CONF: CONSOLE_CRON_NAME must be 1-100 of A-Za-z0-9_.:-")
        kwargs["cron_name"] = name
    if "CONSOLE_KEYMAP" in conf:
        kwargs["keymap"] = keymap_setting(conf["CONSOLE_KEYMAP"])
    for key, name in (
        ("CONSOLE_PROGRAM_LOG_BYTES", "program_log_bytes"),
        ("CONSOLE_PROGRAM_LOG_BACKUPS", "program_log_backups"),
    ):
        if key in conf:
            value = conf[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise SettingsError(f"SENTRY_CONF: {key} must be a whole number, 0 or more")
            kwargs[name] = value
    try:
        return Settings(**kwargs)
    except TypeError as exc:
        raise SettingsError(f"SENTRY_CONF: {exc}") from None
