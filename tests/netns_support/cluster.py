"""The test cluster: a broker host, three console hosts with two workers each, an operator host.

- ``broker``: its own ``redis-server`` on its namespace address, and RabbitMQ reached through a
  forwarder the rig runs (``socat``: TCP in the broker namespace -> a unix socket -> the
  machine's RabbitMQ on 127.0.0.1:5672; filesystem sockets cross namespaces).
- ``hostA``, ``hostB``, ``hostC``: ``sentry-console serve`` each, with two workers (pool of two)
  and a coordinated cron, on the broker host's Redis; one event store file shared by all.
- ``op``: the operator host, where ``sentry-console watch --json`` runs.

Everything started is killed by pid (``Network.kill_host`` kills what lives in the namespaces,
the root-namespace forwarder is killed by process group) in :meth:`Cluster.teardown`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from console.programs import console_command
from console.server.client import NoServer, ServerGone
from tests.netns_support.net import Network
from tests.netns_support.views import ConsoleView, WatchView
from tests.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
APP = "tests.netns_support.clusterapp:app"
BROKER = "broker"
OPERATOR = "op"
CONSOLE_HOSTS = ("hostA", "hostB", "hostC")
REDIS_PORT = 6390
WORKERS_PER_HOST = 2
#: The consoles refresh (and probe the broker) twice a second.
REFRESH = 0.5


@dataclass
class ConsoleHost:
    """A worker host's console: its configuration, state directory and ``serve`` process."""

    name: str
    root: Path
    proc: subprocess.Popen[bytes] | None = None
    view: ConsoleView | None = None

    @property
    def state_dir(self) -> Path:
        """The console's state directory (its socket, logs, cron role files)."""
        return self.root / "state"

    @property
    def log(self) -> Path:
        """What ``serve`` wrote to stdout and stderr."""
        return self.root / "serve.log"


@dataclass
class Cluster:
    """Start, observe, cut and kill the hosts of one test cluster."""

    net: Network = field(default_factory=Network)
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="sc-netns-")))
    consoles: dict[str, ConsoleHost] = field(default_factory=dict)
    watches: list[WatchView] = field(default_factory=list)
    amqp_reach: bool = False
    _root_procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def tick_queue(self) -> str:
        """The queue the crons send their one-second ticks to."""
        return f"netns-ticks-{self.net.suffix}"

    @property
    def event_store(self) -> Path:
        """The SQLite event store every host's workers write to."""
        return self.root / "events.sqlite3"

    @property
    def redis_url(self) -> str:
        """The broker host's Redis, as the hosts reach it."""
        return f"redis://{self.net.hosts[BROKER].address}:{REDIS_PORT}/0"

    def amqp_url(self, vhost: str) -> str:
        """A RabbitMQ vhost through the broker host's forwarder."""
        return f"amqp://guest:guest@{self.net.hosts[BROKER].address}:5672/{vhost}"

    # starting ------------------------------------------------------------------------------
    def start(self) -> None:
        """Build the network, start the broker and every console; wait until they all run."""
        self.net.start()
        for name in (BROKER, *CONSOLE_HOSTS, OPERATOR):
            self.net.add_host(name)
        self._start_redis()
        self._start_amqp_reach()
        for name in CONSOLE_HOSTS:
            self.consoles[name] = ConsoleHost(name, self.root / name)
            self.start_console(name)
        self.run_on(OPERATOR, ["-m", "tests.netns_support.probe", "declare", self.tick_queue])
        for name in CONSOLE_HOSTS:
            self.wait_console(name)

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of every process on a host: this repo, the cluster's broker."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("SENTRY_")}
        env.pop("NOTIFY_SOCKET", None)
        env.update(
            PYTHONPATH=str(REPO),
            PYTHONUNBUFFERED="1",
            SENTRY_BROKER_URL=self.redis_url,
            SENTRY_EVENT_STORE=str(self.event_store),
            NETNS_TICK_QUEUE=self.tick_queue,
        )
        env.update(extra)
        return env

    def spawn(
        self, host: str, argv: list[str], log: Path, env: dict[str, str]
    ) -> subprocess.Popen[bytes]:
        """``argv`` on ``host`` in its own session, output to ``log``."""
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            proc = subprocess.Popen(
                self.net.command(host, argv),
                env=env,
                cwd=REPO,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._procs.append(proc)
        return proc

    def _start_redis(self) -> None:
        data = self.root / BROKER
        data.mkdir()
        log = data / "redis.log"
        address = self.net.hosts[BROKER].address
        argv = ["redis-server", "--bind", address, "--port", str(REDIS_PORT)]
        argv += ["--save", "", "--appendonly", "no", "--protected-mode", "no", "--dir", str(data)]
        self.spawn(BROKER, argv, log, self.env())
        wait_until(
            f"the broker host's redis-server (log: {log})",
            lambda: "Ready to accept connections" in log.read_text(errors="replace"),
            20,
        )

    def _start_amqp_reach(self) -> None:
        """RabbitMQ reached from the broker host's address, when socat is there."""
        if shutil.which("socat") is None:
            return
        sock = self.root / "amqp.sock"
        outer = ["socat", f"UNIX-LISTEN:{sock},fork,mode=600", "TCP:127.0.0.1:5672"]
        with (self.root / "socat-root.log").open("ab") as out:
            self._root_procs.append(
                subprocess.Popen(outer, stdout=out, stderr=out, start_new_session=True)
            )
        address = self.net.hosts[BROKER].address
        inner = ["socat", f"TCP-LISTEN:5672,bind={address},fork,reuseaddr", f"UNIX-CONNECT:{sock}"]
        self.spawn(BROKER, inner, self.root / "socat-broker.log", self.env())
        wait_until("the AMQP forwarder's socket", sock.exists, 10)
        self.amqp_reach = True

    def _write_conf(self, host: ConsoleHost) -> Path:
        conf = host.root / "sentry.conf.py"
        group = {"name": "worker", "processes": WORKERS_PER_HOST, "concurrency": 2}
        conf.write_text(
            f"CONSOLE_WORKERS = [{group!r}]\n"
            "CONSOLE_CRON = True\n"
            "CONSOLE_CRON_COORDINATION = True\n"
            f"CONSOLE_REFRESH_INTERVAL = {REFRESH}\n"
        )
        return conf

    def start_console(self, name: str) -> None:
        """(Re)start ``serve`` on console host ``name``."""
        host = self.consoles[name]
        host.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        env = self.env(
            SENTRY_CONF=str(self._write_conf(host)),
            SENTRY_CONSOLE_STATE_DIR=str(host.state_dir),
        )
        argv = [*console_command(), "--app", APP, "serve"]
        host.proc = self.spawn(name, argv, host.log, env)

    def wait_console(self, name: str, timeout: float = 120) -> ConsoleView:
        """Wait until host ``name``'s console runs every program on a connected broker."""
        host = self.consoles[name]
        if host.view is not None:
            host.view.close()

        def attached() -> ConsoleView | None:
            assert host.proc is not None and host.proc.poll() is None, self.tail(host.log)
            try:
                return ConsoleView(name, host.state_dir)
            except (NoServer, ServerGone, OSError, TimeoutError):
                return None

        host.view = wait_until(f"{name}'s server to listen", attached, timeout, step=0.3)
        host.view.wait_for(
            lambda s: (
                s["broker"]["state"] == "connected"
                and len(s["processes"]) == WORKERS_PER_HOST + 1
                and all(p["state"] == "RUNNING" for p in s["processes"])
            ),
            timeout,
            "every program RUNNING on a connected broker",
        )
        return host.view

    def view(self, name: str) -> ConsoleView:
        """The test's subscription to host ``name``'s console."""
        view = self.consoles[name].view
        assert view is not None, f"{name}'s console is not attached"
        return view

    def watch(self, drop_after: float = 300.0) -> WatchView:
        """``sentry-console watch --json`` on the operator host (offline workers dropped after
        ``drop_after`` seconds)."""
        root = self.root / OPERATOR / f"watch-{len(self.watches) + 1}"
        root.mkdir(parents=True)
        conf = root / "sentry.conf.py"
        conf.write_text(f"CONSOLE_OFFLINE_DROP_AFTER = {drop_after!r}\n")
        env = self.env(SENTRY_CONF=str(conf), SENTRY_CONSOLE_STATE_DIR=str(root / "state"))
        argv = [*console_command(), "--app", APP, "watch", "--json"]
        with (root / "watch.err").open("ab") as err:
            proc = subprocess.Popen(
                self.net.command(OPERATOR, argv),
                env=env,
                cwd=REPO,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                start_new_session=True,
            )
        view = WatchView(f"watch-{len(self.watches) + 1} (drop after {drop_after:g}s)", proc)
        self.watches.append(view)
        return view

    # acting --------------------------------------------------------------------------------
    def run_on(
        self, host: str, argv: list[str], timeout: float = 120, **env: str
    ) -> subprocess.CompletedProcess[str]:
        """Run ``python ARGV`` on ``host``; its result (AssertionError when it fails)."""
        done = subprocess.run(
            self.net.command(host, [sys.executable, *argv]),
            env=self.env(**env),
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert done.returncode == 0, f"{argv} on {host}: {done.returncode}\n{done.stderr[-3000:]}"
        return done

    def send_events(self, count: int, host: str = OPERATOR) -> str:
        """``sentry-console send-events --count N`` from ``host``; what it printed."""
        argv = ["-m", "console", "--app", APP, "send-events", "--count", str(count)]
        return self.run_on(host, argv).stdout.strip()

    def ticks(self) -> list[dict[str, Any]]:
        """Take every tick message off the tick queue (read on the operator host)."""
        argv = ["-m", "tests.netns_support.probe", "ticks", self.tick_queue]
        return list(json.loads(self.run_on(OPERATOR, argv).stdout))

    def kill_host(self, name: str) -> list[int]:
        """SIGKILL everything running on host ``name`` at once (a crashed machine)."""
        host = self.consoles.get(name)
        if host is not None and host.view is not None:
            host.view.close()
            host.view = None
        pids = self.net.kill_host(name)
        if host is not None and host.proc is not None:
            host.proc.wait(10)
        return pids

    # stopping ------------------------------------------------------------------------------
    def teardown(self) -> None:
        """Kill every process, delete namespaces, links, the bridge and the files; idempotent."""
        for host in self.consoles.values():
            if host.view is not None:
                host.view.close()
                host.view = None
        self.net.teardown()  # SIGKILLs every process in the namespaces, watch included
        for watch in self.watches:
            watch.stop(timeout=5)
        for proc in [*self._root_procs, *self._procs]:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)
        shutil.rmtree(self.root, ignore_errors=True)

    def leftovers(self) -> list[str]:
        """What this cluster left behind: namespaces, links, processes, files."""
        left = self.net.leftovers()
        left += [f"pid {p.pid}" for p in [*self._root_procs, *self._procs] if p.poll() is None]
        left += [f"watch pid {w.proc.pid}" for w in self.watches if w.proc.poll() is None]
        if self.root.exists():
            left.append(str(self.root))
        return left

    @staticmethod
    def tail(path: Path, lines: int = 30) -> str:
        """The last lines of a log file, for assertion messages."""
        if not path.exists():
            return f"({path} does not exist)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
