"""Prometheus metrics over real HTTP: real workers, a real broker, ``watch`` and ``serve``."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_parse

from tests.cluster_support.app import make_app
from tests.metrics_support import (
    ROOT,
    Samples,
    console_command,
    free_port,
    get,
    scrape,
    started,
    total,
    value,
)
from tests.metrics_support.prio_app import make_app as make_prio_app
from tests.metrics_support.prio_app import queue_name
from tests.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"


def with_password(redis_url: str, secret: str) -> str:
    """The same database with a user and password (the test Redis's default user has none,
    so any password is accepted): what the console must never show."""
    return redis_url.replace("redis://", f"redis://default:{secret}@", 1)


def base_env(broker_url: str, unique: str, state_dir: Path) -> dict[str, str]:
    env = dict(os.environ, SC_TEST_BROKER_URL=broker_url, SC_TEST_SUFFIX=unique)
    env |= {"SENTRY_BROKER_URL": broker_url, "SENTRY_CONSOLE_STATE_DIR": str(state_dir)}
    env |= {"SENTRY_CONSOLE_REFRESH": "0.3", "PYTHONUNBUFFERED": "1"}
    env.pop("SENTRY_CONF", None)
    env.pop("NOTIFY_SOCKET", None)
    return env


@pytest.fixture
def worker(redis_url: str, unique: str, tmp_path: Path) -> Iterator[str]:
    """One real prefork worker (events on) on host ``mhost-UNIQUE``; its broker URL."""
    url = with_password(redis_url, f"pw-{unique}")
    node = f"w1@mhost-{unique}"
    command = [sys.executable, "-m", "celery", "-A", "tests.cluster_support.app", "worker",
               "-n", node, "-P", "prefork", "-c", "2", "-E", "-l", "INFO",
               "--without-mingle", "--without-gossip"]  # fmt: skip
    env = base_env(url, unique, tmp_path / "worker-state")
    with started(command, env, tmp_path / "worker.log"):
        yield url


def test_watch_scrape_counts_real_tasks_and_never_shows_the_password(
    worker: str, unique: str, tmp_path: Path
) -> None:
    url = worker
    secret = f"pw-{unique}"
    port = free_port()
    env = base_env(url, unique, tmp_path / "state")
    command = console_command("--app", "tests.cluster_support.app:app", "watch", "--headless")
    command += ["--metrics", f"127.0.0.1:{port}"]
    host = f"mhost-{unique}"
    queue = f"cluster-test-{unique}"
    log = tmp_path / "watch.log"
    with started(command, env, log) as proc:

        def ready() -> Samples | None:
            assert proc.poll() is None, log.read_text()
            samples = scrape(port)
            if samples is None:
                return None
            up = value(samples, "celery_worker_up", hostname=host) == 1
            listening = value(samples, "sentry_console_events_listening") == 1
            return samples if up and listening else None

        wait_until("the worker up in a scrape", ready, 60, step=0.3)
        app = make_app(url, unique)
        for n in range(5):
            app.send_task("cluster_test.add", (n, n))
        for n in range(2):
            app.send_task("cluster_test.fail", (f"boom {n}",))

        def counted() -> Samples | None:
            samples = scrape(port)
            if samples is None:
                return None
            done = total(samples, "celery_task_succeeded_total", name="cluster_test.add") == 5
            failed = total(samples, "celery_task_failed_total", name="cluster_test.fail") == 2
            return samples if done and failed else None

        samples = wait_until("5 successes and 2 failures counted", counted, 60, step=0.3)
        labels = {"hostname": host, "queue_name": queue}
        add = {"name": "cluster_test.add", **labels}
        fail = {"name": "cluster_test.fail", **labels}
        assert value(samples, "celery_task_succeeded_total", **add) == 5
        assert value(samples, "celery_task_received_total", **add) == 5
        assert value(samples, "celery_task_started_total", **add) == 5
        assert value(samples, "celery_task_failed_total", **add, exception="") == 0
        assert value(samples, "celery_task_failed_total", **fail, exception="ValueError") == 2
        assert value(samples, "celery_task_received_total", **fail) == 2
        assert value(samples, "celery_task_runtime_count", **add) == 5
        assert value(samples, "celery_task_runtime_bucket", **add, le="+Inf") == 5
        assert total(samples, "celery_task_sent_total", queue_name=queue) == 7  # producer host
        assert value(samples, "celery_worker_up", hostname=host) == 1

        def consumers() -> Samples | None:  # from the next detail poll of the worker's queues
            samples = scrape(port) or {}
            found = value(samples, "celery_active_worker_count", queue_name=queue) == 1
            return samples if found else None

        samples = wait_until("the worker counted on its queue", consumers, 30, step=0.3)
        assert value(samples, "celery_active_process_count", queue_name=queue) == 2
        assert value(samples, "sentry_console_broker_up") == 1
        wait_until(
            "the queue empty in a scrape",
            lambda: value(scrape(port) or {}, "celery_queue_length", queue_name=queue) == 0,
            30,
            step=0.3,
        )

        health = get(port, "/healthz")
        assert health is not None and health.status == 200, health
        assert health.body.startswith("ok: broker connected")
        text = get(port, "/metrics")
        assert text is not None and text.content_type.startswith("text/plain")
        om = get(port, "/metrics", accept=OPENMETRICS)
        assert om is not None and om.content_type.startswith("application/openmetrics-text")
        assert om.body.endswith("# EOF\n")
        om_samples = {  # the strict OpenMetrics parser takes the whole body
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in openmetrics_parse(om.body)
            for s in family.samples
        }
        assert om_samples[("celery_task_succeeded_total", tuple(sorted(add.items())))] == 5
        missing = get(port, "/nothing")
        assert missing is not None and missing.status == 404
        for body in (text.body, om.body, health.body):
            assert secret not in body
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, log.read_text()
    assert secret not in log.read_text()


def test_queue_length_counts_every_priority_behind_a_key_prefix(
    redis_url: str, redis_db: int, unique: str, tmp_path: Path
) -> None:
    prefix = f"mt{unique}:"
    app = make_prio_app(redis_url, unique, prefix)
    seed = {0: 2, 2: 1, 3: 3, 5: 1, 6: 2, 9: 4}
    for priority, count in seed.items():
        for n in range(count):
            app.send_task("prio_test.noop", (n,), priority=priority)
    queue = queue_name(unique)
    raw = redis.Redis.from_url(redis_url)
    keys = [k for k in raw.scan_iter(match=f"{prefix}{queue}*") if raw.type(k) == b"list"]
    true_depth = sum(int(raw.llen(k)) for k in keys)
    assert true_depth == sum(seed.values())
    assert raw.llen(f"{prefix}{queue}") < true_depth  # the base list alone misses most of it
    assert raw.llen(queue) == 0  # and without the prefix there is nothing at all

    port = free_port()
    env = base_env(redis_url, unique, tmp_path / "state") | {"SC_TEST_KEYPREFIX": prefix}
    command = console_command("--app", "tests.metrics_support.prio_app:app", "watch")
    command += ["--headless", "--metrics", str(port)]
    log = tmp_path / "watch.log"
    with started(command, env, log) as proc:

        def depth() -> float | None:
            assert proc.poll() is None, log.read_text()
            return value(scrape(port) or {}, "celery_queue_length", queue_name=queue)

        assert wait_until("the queue length in a scrape", depth, 60, step=0.3) == true_depth
    raw.close()


def write_conf(path: Path, port: int) -> Path:
    broken = {"name": "broken", "processes": 1, "concurrency": 1, "loglevel": "NOPE"}
    path.write_text(
        f"CONSOLE_WORKERS = [{broken!r}]\nCONSOLE_CRON = False\n"
        f"CONSOLE_REFRESH_INTERVAL = 0.3\nCONSOLE_METRICS = '127.0.0.1:{port}'\n"
    )
    return path


def test_a_fatal_program_turns_healthz_503_on_serve(
    redis_url: str, state_dir: Path, unique: str
) -> None:
    port = free_port()
    env = base_env(redis_url, unique, state_dir)
    env |= {
        "SENTRY_CONF": str(write_conf(state_dir.parent / "sentry.conf.py", port)),
        "SENTRY_QUEUE_SUFFIX": f"-{unique}",
        "SENTRY_EVENT_STORE": str(state_dir / "events.sqlite3"),
    }
    log = state_dir.parent / "serve.log"
    with started(console_command("serve"), env, log) as proc:

        def unhealthy() -> str | None:
            assert proc.poll() is None, log.read_text()
            reply = get(port, "/healthz")
            if reply is None or reply.status != 503 or "FATAL" not in reply.body:
                return None
            return reply.body

        body = wait_until("/healthz 503 with a FATAL program", unhealthy, 90, step=0.3)
        assert "FATAL: broken-1" in body, body
        samples = scrape(port)
        assert samples is not None
        fatal = {"program": "broken-1", "group": "broken"}
        assert value(samples, "sentry_console_program_state", **fatal, state="FATAL") == 1
        assert value(samples, "sentry_console_program_state", **fatal, state="RUNNING") == 0
        assert (value(samples, "sentry_console_program_restarts_total", **fatal) or 0) >= 1
        assert value(samples, "sentry_console_program_last_exit_code", **fatal) == 2
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, log.read_text()
    assert get(port, "/healthz") is None  # the listener went with the server


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        console_command(*args), env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def test_a_non_loopback_address_is_refused_unless_asked(
    redis_url: str, unique: str, tmp_path: Path
) -> None:
    env = base_env(redis_url, unique, tmp_path / "state")
    app = ("--app", "tests.cluster_support.app:app")
    refused = "is not a loopback address; metrics bind only to 127.0.0.1 or ::1 unless"
    for args in (("serve", "--metrics", "0.0.0.0:9818"), ("watch", "--headless", "--metrics",
                                                           "192.0.2.1:9818")):  # fmt: skip
        done = run(env, *app, *args)
        assert done.returncode == 1, done
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: --metrics: ") and refused in lines[0]
    assert not (tmp_path / "state" / "console.log").exists()  # refused before anything started

    conf = tmp_path / "sentry.conf.py"
    conf.write_text("CONSOLE_METRICS = '[::]:9818'\n")
    done = run(env | {"SENTRY_CONF": str(conf)}, *app, "serve")
    assert done.returncode == 1 and refused in done.stderr, done
    assert len(done.stderr.strip().splitlines()) == 1

    done = run(env, *app, "serve", "--metrics", "127.0.0.1:70000")
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "error: --metrics: port must be a number from 1 to 65535, not '70000'"
    )


@pytest.mark.parametrize("command", ["watch", "serve"])
def test_a_port_in_use_is_one_line_and_a_non_zero_exit(
    command: str, redis_url: str, unique: str, tmp_path: Path
) -> None:
    env = base_env(redis_url, unique, tmp_path / "state")
    if command == "serve":  # programs that would start if the listener did not fail first
        conf = tmp_path / "sentry.conf.py"
        conf.write_text("CONSOLE_WORKERS = [{'name': 'worker', 'processes': 1}]\n")
        env |= {"SENTRY_CONF": str(conf), "SENTRY_QUEUE_SUFFIX": f"-{unique}"}
    args = ["watch", "--headless"] if command == "watch" else ["serve"]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run(env, "--app", "tests.cluster_support.app:app", *args,
                   "--metrics", f"127.0.0.1:{port}")  # fmt: skip
    assert done.returncode == 1, done
    assert done.stderr.strip().splitlines() == [
        f"error: metrics: cannot listen on 127.0.0.1:{port}: the port is already in use"
    ]
    if command == "serve":
        assert not list((tmp_path / "state" / "logs").glob("worker-*.log"))  # nothing started


def test_headless_watch_needs_metrics(redis_url: str, unique: str, tmp_path: Path) -> None:
    done = run(base_env(redis_url, unique, tmp_path / "state"), "watch", "--headless")
    assert done.returncode == 2
    assert "--headless needs --metrics" in done.stderr


def test_rabbitmq_broker_up_and_no_password(rabbitmq_url: str, unique: str, tmp_path: Path) -> None:
    port = free_port()
    env = base_env(rabbitmq_url, unique, tmp_path / "state")
    command = console_command("--app", "tests.cluster_support.app:app", "watch", "--headless")
    command += ["--metrics", f"127.0.0.1:{port}"]
    log = tmp_path / "watch.log"
    with started(command, env, log) as proc:

        def up() -> Samples | None:
            assert proc.poll() is None, log.read_text()
            samples = scrape(port)
            return samples if samples and value(samples, "sentry_console_broker_up") == 1 else None

        wait_until("the RabbitMQ broker up in a scrape", up, 60, step=0.3)
        health = get(port, "/healthz")
        assert health is not None and health.status == 200, health
        text = get(port, "/metrics")
        assert text is not None
        for body in (text.body, health.body):
            assert "guest" not in body  # user and password alike: no URL at all
