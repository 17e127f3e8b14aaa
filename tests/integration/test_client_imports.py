"""A client of the server carries none of the engine: an attached TUI and ``ctl`` import neither
celery, kombu, billiard nor a broker client (redis-py, amqp).

A real server runs in this process; each client runs in a fresh interpreter, does its work
against the server, and reports what it imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.server_support import inprocess_server

ROOT = Path(__file__).resolve().parents[2]
ENGINE = ("celery", "kombu", "billiard", "redis", "amqp")

# A TUI attached the way ``sentry-console`` attaches it, headless, gone after the first
# snapshot it showed; then a program's output and a task as a screen asks for them.
ATTACHED_TUI = """
import json, sys
from console.server.client import RemoteSource, ServerClient
from console.settings import resolve_settings
from console.ui.app import ConsoleApp

settings = resolve_settings()
client = ServerClient(settings.state_dir)
client.hello(client="tui")
source = RemoteSource(client, settings, read_only=False)
shown = []

class FirstSnapshot(ConsoleApp):
    def on_mount(self):
        super().on_mount()
        self.set_timer(20, self.exit)  # a bound: the test fails below, never hangs

    def _show_data(self, data, message):
        super()._show_data(data, message)
        shown.append(sorted(p.name for p in data.processes))
        self.exit()

FirstSnapshot(source).run(headless=True, size=(120, 30))
source.output("worker-1", 10)
source.task("no-such-task")
client.close()
print(json.dumps({"shown": shown, "modules": sorted(sys.modules)}))
"""

CTL_STATUS = """
import json, sys
from console.cli import main
try:
    main(["ctl", "status"])
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def run_client(code: str, state_dir: Path, broker_url: str) -> dict[str, object]:
    env = dict(os.environ, SENTRY_CONSOLE_STATE_DIR=str(state_dir), SENTRY_BROKER_URL=broker_url)
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    report: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return report


def engine_modules(report: dict[str, object]) -> list[str]:
    modules = report["modules"]
    assert isinstance(modules, list)
    return sorted({m for m in modules if m.split(".")[0] in ENGINE})


def test_an_attached_tui_imports_no_engine(redis_url: str, state_dir: Path) -> None:
    with inprocess_server(redis_url, state_dir, processes=1):
        report = run_client(ATTACHED_TUI, state_dir, redis_url)
    assert report["shown"] == [["worker-1"]], "the TUI showed the server's snapshot"
    assert engine_modules(report) == []


def test_ctl_status_imports_no_engine(redis_url: str, state_dir: Path) -> None:
    with inprocess_server(redis_url, state_dir, processes=1):
        report = run_client(CTL_STATUS, state_dir, redis_url)
    assert report["code"] in (0, None), "ctl status answered"
    assert engine_modules(report) == []
