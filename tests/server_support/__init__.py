"""A supervisor server in the test process, on fake processes and a real broker."""

from __future__ import annotations

import os
import pwd
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from console.appref import load_app
from console.runtime import ConsoleRuntime
from console.server.client import ServerClient
from console.server.server import SupervisorServer
from console.settings import Settings, WorkerGroup
from console.supervision import Supervisor
from tests.supervision_support.fakes import FakeClock, FakeSpawner


@contextmanager
def inprocess_server(
    broker_url: str,
    state_dir: Path,
    *,
    processes: int = 1,
    max_processes: int = 32,
    poll: bool = True,
) -> Iterator[SupervisorServer]:
    """A server whose programs are fake processes (no child is started), stopped afterwards.

    ``poll=False``: no snapshot is taken or pushed but those the test hands to ``publish``."""
    settings = Settings(
        broker=None,
        broker_source="test",
        state_dir=state_dir,
        worker_groups=(WorkerGroup(name="worker", processes=processes),),
        cron=False,
        max_processes=max_processes,
        refresh_interval=0.2,
    ).with_broker(broker_url, "test")
    supervisor = Supervisor(spawner=FakeSpawner(FakeClock()), tick_interval=0.02)
    before = os.environ.get("SENTRY_BROKER_URL")
    app = load_app(settings.app, broker_url)  # which also sets SENTRY_BROKER_URL: put it back
    if before is None:
        os.environ.pop("SENTRY_BROKER_URL", None)
    else:
        os.environ["SENTRY_BROKER_URL"] = before
    runtime = ConsoleRuntime(settings, app, supervisor)
    server = SupervisorServer(runtime)
    server.listen()
    runtime.start()
    loop = threading.Thread(target=server.serve_forever, daemon=True)
    if poll:
        loop.start()
    try:
        yield server
    finally:
        if not server.stopped.is_set():
            server.shutdown(wait=False)
        if poll:
            loop.join(10)
        server.close()


def client_of(server: SupervisorServer, *, read_only: bool = False) -> ServerClient:
    """A connected client that said hello."""
    client = ServerClient(server.settings.state_dir)
    client.hello(read_only=read_only)
    return client


SYSTEM_PYTHON = "/usr/bin/python3"
"""A python that any user (nobody) may run, for tests of another uid."""


def need_root_and_nobody() -> int:
    """nobody's uid; the test fails under CI (and skips elsewhere) without root and runuser."""
    ok = os.geteuid() == 0 and shutil.which("runuser") and os.path.exists(SYSTEM_PYTHON)
    if not ok:
        why = "needs root, runuser and a python that nobody may run"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(why)
        pytest.skip(why)
    return pwd.getpwnam("nobody").pw_uid
