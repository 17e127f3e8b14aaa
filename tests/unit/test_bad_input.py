"""Bad input, table-driven: one clear line, a non-zero exit, no traceback, no password, quickly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner

from console.broker.embedded import ConsoleLock
from console.cli import main

SECRET = "s3cr3t-Pw9"
REDIS = os.environ.get("SC_TEST_REDIS_HOST", "127.0.0.1")
LIMIT_SECONDS = 20.0


@dataclass(frozen=True)
class Case:
    """One bad invocation and a fragment its error line must contain."""

    id: str
    args: tuple[str, ...]
    expect: str
    env: dict[str, str] = field(default_factory=dict)
    conf: str | None = None  # text of a sentry.conf.py written for the case
    needs: str = ""  # "redis" or "rabbitmq" when the case needs that broker


def redis_url(db: int = 0, password: str | None = None) -> str:
    port = os.environ.get("SC_TEST_REDIS_PORT", "6379")
    auth = f":{password}@" if password else ""
    return f"redis://{auth}{REDIS}:{port}/{db}"


CASES = [
    # malformed URLs, unknown schemes, invalid port or db
    Case("port-not-a-number", ("--broker", f"redis://:{SECRET}@localhost:abc/0", "status"), "port"),
    Case("port-out-of-range", ("--broker", "redis://localhost:99999/0", "status"), "port"),
    Case("db-not-a-number", ("--broker", "redis://localhost:6379/zero", "status"), "db"),
    Case("db-negative", ("--broker", "redis://localhost:6379/-1", "status"), "db"),
    Case("unknown-scheme", ("--broker", f"mysql://u:{SECRET}@localhost/db", "status"), "scheme"),
    Case("no-scheme", ("--broker", "localhost:6379", "status"), "broker"),
    Case("empty-url", ("--broker", "", "status"), "broker"),
    Case("spaces", ("--broker", "redis://local host:6379/0", "status"), "broker"),
    Case(
        "env-url-malformed",
        ("status",),
        "SENTRY_BROKER_URL",
        env={"SENTRY_BROKER_URL": f"redis://:{SECRET}@host:port"},
    ),
    # unreachable brokers: closed port, wrong or missing password, no such socket
    Case(
        "closed-port",
        ("--broker", redis_url_closed := "redis://127.0.0.1:1/0", "queues", "list"),
        "down",
    ),
    Case(
        "closed-port-amqp",
        ("--broker", f"amqp://guest:{SECRET}@127.0.0.1:1//", "queues", "list"),
        "down",
    ),
    Case("status-broker-down", ("--broker", redis_url_closed, "status", "--json"), "down"),
    Case(
        "no-such-socket",
        ("--broker", "redis+socket:///nonexistent/redis.sock", "queues", "list"),
        "down",
    ),
    Case(
        "amqp-wrong-password",
        ("--broker", f"amqp://guest:{SECRET}@127.0.0.1:5672//", "queues", "list"),
        "authentication",
        needs="rabbitmq",
    ),
    Case(
        "amqp-missing-password",
        ("--broker", "amqp://nobody@127.0.0.1:5672//", "queues", "list"),
        "authentication",
        needs="rabbitmq",
    ),
    # SENTRY_CONF
    Case("conf-missing", ("status",), "does not exist", env={"SENTRY_CONF": "/nonexistent/x.py"}),
    Case("conf-dir-without-file", ("status",), "does not exist", env={"SENTRY_CONF": "{tmp}"}),
    Case("conf-syntax-error", ("status",), "syntax error", conf="BROKER_URL = 'redis://\n"),
    Case("conf-broker-wrong-type", ("status",), "must be a string", conf="BROKER_URL = 42\n"),
    Case("conf-raises", ("status",), "failed", conf=f"raise RuntimeError('{SECRET}')\n"),
    Case("conf-workers-not-list", ("status",), "CONSOLE_WORKERS", conf="CONSOLE_WORKERS = 'x'\n"),
    Case(
        "conf-concurrency-0",
        ("status",),
        "concurrency",
        conf="CONSOLE_WORKERS = [{'name': 'w', 'concurrency': 0}]\n",
    ),
    Case(
        "conf-negative-processes",
        ("status",),
        "processes",
        conf="CONSOLE_WORKERS = [{'name': 'w', 'processes': -2}]\n",
    ),
    Case("conf-refresh-negative", ("status",), "REFRESH", conf="CONSOLE_REFRESH_INTERVAL = -1\n"),
    Case("conf-max-zero", ("status",), "MAX_PROCESSES", conf="CONSOLE_MAX_PROCESSES = 0\n"),
    Case("conf-reload-not-bool", ("status",), "CONSOLE_RELOAD", conf="CONSOLE_RELOAD = 1\n"),
    Case(
        "reload-path-missing",
        ("--reload", "status"),
        "CONSOLE_RELOAD_PATHS",
        conf="CONSOLE_RELOAD_PATHS = ['nowhere']\n",
    ),
    Case("env-refresh-text", ("status",), "REFRESH", env={"SENTRY_CONSOLE_REFRESH": "soon"}),
    Case("env-refresh-zero", ("status",), "REFRESH", env={"SENTRY_CONSOLE_REFRESH": "0"}),
    # the app and the queues
    Case(
        "app-not-importable",
        ("--app", "no.such.module", "queues", "list"),
        "cannot import",
        needs="redis",
    ),
    Case(
        "app-not-celery",
        ("--app", "os.path:join", "queues", "list"),
        "not a Celery app",
        needs="redis",
    ),
    Case(
        "purge-unknown-queue", ("queues", "purge", "-f", "nosuch"), "unknown queue", needs="redis"
    ),
    Case("purge-without-tty", ("queues", "purge", "default-badinput"), "use -f", needs="redis"),
    Case("worker-unknown-queue", ("run", "worker", "-Q", "nosuch"), "unknown queue", needs="redis"),
    # counts and numbers
    Case("concurrency-0", ("run", "worker", "-c", "0"), "concurrency"),
    Case("concurrency-negative", ("run", "worker", "-c", "-3"), "concurrency"),
    Case("max-tasks-negative", ("run", "worker", "--max-tasks-per-child", "-1"), "max-tasks"),
    Case("count-negative", ("send-events", "--count", "-5"), "count"),
    Case("count-zero", ("send-events", "--count", "0"), "count"),
    Case("count-not-a-number", ("send-events", "--count", "many"), "count"),
    Case("rate-zero", ("send-events", "--rate", "0"), "rate"),
    Case("screenshot-size", ("screenshots", "--size", "80by24"), "--size"),
    # plain usage mistakes
    Case("unknown-command", ("frobnicate",), "No such command"),
    Case("unknown-option", ("--nope",), "No such option"),
    Case("purge-missing-queue", ("queues", "purge"), "QUEUE"),
]


def check_error(code: int, stderr: str, expect: str) -> None:
    """One non-empty stderr line, ``error: ...``, containing ``expect``; no traceback, no secret."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code != 0
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: "), lines
    assert expect.lower() in lines[0].lower(), lines
    assert "Traceback" not in stderr
    assert SECRET not in stderr


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_gets_one_clear_line(
    case: Case, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    env: dict[str, str | None] = {
        "SENTRY_CONF": None,
        "SENTRY_BROKER_URL": None,
        "SENTRY_CONSOLE_REFRESH": None,
        "SENTRY_CONSOLE_STATE_DIR": str(tmp_path / "state"),
        "SENTRY_QUEUE_SUFFIX": "-badinput",  # the app caches its queue names once per process
    }
    env.update({k: v.replace("{tmp}", str(tmp_path)) for k, v in case.env.items()})
    if case.conf is not None:
        (tmp_path / "sentry.conf.py").write_text(case.conf)
        env["SENTRY_CONF"] = str(tmp_path)
    args = list(case.args)
    if case.needs == "redis":
        env["SENTRY_BROKER_URL"] = request.getfixturevalue("redis_url")
    if case.needs == "rabbitmq":
        request.getfixturevalue("rabbitmq_vhost")  # skips (or fails under CI) without RabbitMQ
    started = time.monotonic()
    result = CliRunner().invoke(main, args, env=env, catch_exceptions=False)
    elapsed = time.monotonic() - started
    check_error(result.exit_code, result.stderr, case.expect)
    assert SECRET not in result.stdout
    assert elapsed < LIMIT_SECONDS


def test_case_table_is_big_enough() -> None:
    assert len(CASES) >= 30
    assert len({c.id for c in CASES}) == len(CASES)


OWN_SETTINGS = ("SENTRY_BROKER_URL", "SENTRY_CONF")
"""Variables each case sets for itself, never inherited from the test process."""


def run_cli(args: list[str], env: dict[str, str], timeout: float = 60) -> tuple[int, str]:
    """Run ``python -m console`` in its own process group; kill the group whatever happens."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "console", *args],
        env={**{k: v for k, v in os.environ.items() if k not in OWN_SETTINGS}, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        _, stderr = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode, stderr


def test_second_console_on_the_same_state_dir(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    lock = ConsoleLock(state)
    lock.acquire()
    try:
        env = {"SENTRY_CONSOLE_STATE_DIR": str(state), "SENTRY_BROKER_URL": redis_url()}
        code, stderr = run_cli([], env)
    finally:
        lock.release()
    check_error(code, stderr, "already running")


def test_a_real_process_prints_no_traceback(tmp_path: Path) -> None:
    (tmp_path / "sentry.conf.py").write_text(f"BROKER_URL = 'redis://:{SECRET}@h:x/0'\n")
    code, stderr = run_cli(["status", "--json"], {"SENTRY_CONF": str(tmp_path)})
    check_error(code, stderr, "port")
