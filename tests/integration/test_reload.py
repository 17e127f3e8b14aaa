"""``--reload`` with real files and real Celery workers: edit a task, break the app, fix it."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from console.appref import load_app
from console.runtime import ConsoleRuntime
from console.settings import Settings, WorkerGroup
from console.supervision import ProcessSnapshot, ProcessState, Supervisor
from tests.chaos_support.helpers import kill_groups
from tests.cluster_support.reload_app import TASK, save, tasks_source, write_package
from tests.waiting import wait_until

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def app_package(tmp_path: Path, unique: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A Celery app package of the test's own in a temp directory, importable by the children."""
    root = tmp_path / "src"
    package = write_package(root, unique)
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setenv("PYTHONPATH", str(root))
    yield package
    for name in [m for m in sys.modules if m.startswith(package.name)]:
        del sys.modules[name]


@pytest.fixture
def runtime(
    app_package: Path,
    redis_url: str,
    state_dir: Path,
    unique: str,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> Iterator[ConsoleRuntime]:
    """A started runtime with ``reload`` on: one worker process and the cron, or (with an
    indirect parameter) that many worker processes and no cron."""
    monkeypatch.setenv("SENTRY_BROKER_URL", redis_url)
    processes = getattr(request, "param", 1)
    group = WorkerGroup(processes=processes, concurrency=1, hostname=f"rl{unique}-{{n}}@%h")
    settings = Settings(
        broker=None,
        broker_source="test",
        app=f"{app_package.name}.app:app",
        state_dir=state_dir,
        worker_groups=(group,),
        cron=processes == 1,
        reload=True,
    ).with_broker(redis_url, "test")
    rt = ConsoleRuntime(settings, load_app(settings.app, redis_url), Supervisor(tick_interval=0.05))
    rt.start()
    groups: set[int] = set()
    try:
        assert rt._reloader is not None and rt._reloader.watching.wait(30)
        yield rt
    finally:
        groups.update(s.pgid for s in rt.supervisor.snapshot() if s.pgid)
        rt.shutdown()
        kill_groups(sorted(groups))


def snap(rt: ConsoleRuntime, name: str) -> ProcessSnapshot:
    """The current snapshot of one program."""
    return next(s for s in rt.supervisor.snapshot() if s.name == name)


def running_pid(rt: ConsoleRuntime, name: str, timeout: float = 60) -> int:
    """Wait until ``name`` is RUNNING; its pid."""
    assert rt.supervisor.wait_for(
        lambda snaps: any(s.name == name and s.state is ProcessState.RUNNING for s in snaps),
        timeout,
    ), snap(rt, name)
    pid = snap(rt, name).pid
    assert pid is not None
    return pid


def run_value(rt: ConsoleRuntime, timeout: float = 60) -> object:
    """Run the app's task once through the broker and return its result."""
    return rt.app.send_task(TASK).get(timeout=timeout)


def test_an_edited_task_returns_the_new_value_and_cron_restarts(
    runtime: ConsoleRuntime, app_package: Path
) -> None:
    worker_pid, cron_pid = running_pid(runtime, "worker-1"), running_pid(runtime, "cron")
    assert run_value(runtime) == "first"

    saved = time.monotonic()
    save(app_package / "tasks.py", tasks_source('"second version"'))
    wait_until("a new worker", lambda: snap(runtime, "worker-1").pid not in (worker_pid, None), 60)
    assert run_value(runtime) == "second version"
    print(f"new value {time.monotonic() - saved:.2f}s after the save")
    assert runtime.last_reload == "reloaded: tasks.py changed"
    assert runtime.poll().last_reload == "reloaded: tasks.py changed"
    logged = runtime.log_file.read_text()
    assert (
        f"sentry_console.reload: reloaded: tasks.py changed ({app_package / 'tasks.py'})" in logged
    )
    wait_until("a new cron", lambda: snap(runtime, "cron").pid not in (cron_pid, None), 60)
    assert snap(runtime, "worker-1").restarts == 1


def test_a_syntax_error_fails_the_programs_and_its_fix_brings_them_back(
    runtime: ConsoleRuntime, app_package: Path
) -> None:
    running_pid(runtime, "worker-1")
    save(app_package / "tasks.py", "def value(:\n    return 1\n")
    assert runtime.supervisor.wait_for(
        lambda snaps: all(s.state is ProcessState.FATAL for s in snaps), 90
    ), runtime.supervisor.snapshot()
    output = "\n".join(runtime.output("worker-1"))
    assert "invalid syntax (tasks.py line 1)" in output, output[-2000:]
    status = runtime.poll()
    assert status.last_reload == "reloaded: tasks.py changed"

    save(app_package / "tasks.py", tasks_source('"fixed"'))
    running_pid(runtime, "worker-1", timeout=90)
    running_pid(runtime, "cron", timeout=90)
    assert run_value(runtime) == "fixed"


def test_a_fix_during_backoff_starts_the_worker_at_once(
    runtime: ConsoleRuntime, app_package: Path
) -> None:
    running_pid(runtime, "worker-1")
    save(app_package / "tasks.py", "import no_such_module_here\n")
    assert runtime.supervisor.wait_for(
        lambda snaps: any(s.name == "worker-1" and s.state is ProcessState.BACKOFF for s in snaps),
        60,
    )
    assert "no_such_module_here" in "\n".join(runtime.output("worker-1"))
    save(app_package / "tasks.py", tasks_source('"back"'))
    running_pid(runtime, "worker-1", timeout=90)
    assert run_value(runtime) == "back"
    assert snap(runtime, "worker-1").state is ProcessState.RUNNING


@pytest.mark.parametrize("runtime", [2], indirect=True)
def test_a_group_of_two_reloads_rolling(runtime: ConsoleRuntime, app_package: Path) -> None:
    before = {name: running_pid(runtime, name) for name in ("worker-1", "worker-2")}
    save(app_package / "tasks.py", tasks_source('"rolled"'))
    wait_until(
        "worker-1", lambda: snap(runtime, "worker-1").pid not in (before["worker-1"], None), 60
    )
    # worker-2 goes only once worker-1's replacement is RUNNING and answers a ping.
    assert snap(runtime, "worker-2").pid == before["worker-2"]
    assert snap(runtime, "worker-2").state is ProcessState.RUNNING
    running_pid(runtime, "worker-1")
    wait_until(
        "worker-2", lambda: snap(runtime, "worker-2").pid not in (before["worker-2"], None), 60
    )
    running_pid(runtime, "worker-2")
    assert [run_value(runtime) for _ in range(4)] == ["rolled"] * 4
    assert runtime.last_reload == "reloaded: tasks.py changed"


def test_a_server_started_for_a_tui_with_reload_reloads(
    app_package: Path,
    redis_url: str,
    state_dir: Path,
    unique: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from console.server.client import RemoteSource
    from console.server.lifecycle import start_background_server
    from console.settings import resolve_settings

    conf = state_dir.parent / "sentry.conf.py"
    group = {"name": "worker", "concurrency": 1, "hostname": f"rs{unique}-{{n}}@%h"}
    conf.write_text(f"CONSOLE_WORKERS = [{group!r}]\nCONSOLE_CRON = False\n")
    for name, value in (
        ("SENTRY_CONF", str(conf)),
        ("SENTRY_BROKER_URL", redis_url),
        ("SENTRY_CONSOLE_STATE_DIR", str(state_dir)),
    ):
        monkeypatch.setenv(name, value)
    app_path = f"{app_package.name}.app:app"
    settings = resolve_settings(app=app_path, reload=True)  # what `sentry-console --reload` has
    before = {c.pid for c in psutil.Process().children(recursive=True)}
    connection = start_background_server(settings, app_path, None)
    try:
        connection.hello(client="tui")
        source = RemoteSource(connection, settings, read_only=False)

        def worker() -> ProcessSnapshot | None:
            data = source.poll()
            return next((p for p in data.processes if p.state is ProcessState.RUNNING), None)

        wait_until("the server's worker RUNNING", lambda: worker() is not None, 90)
        first = worker()
        assert first is not None
        client = load_app(app_path, redis_url)
        assert client.send_task(TASK).get(timeout=60) == "first"
        save(app_package / "tasks.py", tasks_source('"via the server"'))
        wait_until(
            "the reload", lambda: source.poll().last_reload == "reloaded: tasks.py changed", 30
        )
        wait_until("a new worker", lambda: (worker() or first).pid != first.pid, 60)
        assert client.send_task(TASK).get(timeout=60) == "via the server"
    finally:
        with contextlib.suppress(Exception):
            connection.request("shutdown", timeout=60)
        # The server runs in a session of its own, so a pid is the only safe handle on it.
        for proc in psutil.Process().children(recursive=True):
            if proc.pid not in before:
                with contextlib.suppress(psutil.Error):
                    proc.kill()
