"""Headless commands against a real Redis: `status --json`, `queues list`, `queues purge`."""

from __future__ import annotations

import getpass
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

QUEUE_KEYS = {"name", "ready", "consumers", "unacked", "exists"}
STATUS_QUEUE_KEYS = QUEUE_KEYS | {"bytes", "unacked_overdue", "oldest_age_seconds"}
BROKER_KEYS = {"url", "source", "state", "reason", "rtt_ms", "server_version"}
CAPACITY_KEYS = {"memory", "blocked", "unacked", "unacked_overdue", "warnings", "notes"}


@pytest.fixture
def cli_env(redis_url: str, unique: str, state_dir: Path) -> dict[str, str | None]:
    return {
        "SENTRY_QUEUE_SUFFIX": f"-{unique}",
        "SENTRY_CONSOLE_STATE_DIR": str(state_dir),
        "SENTRY_BROKER_URL": None,
        "SENTRY_CONF": None,
    }


@dataclass(frozen=True)
class Result:
    """What one run of the CLI left behind."""

    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run(env: dict[str, str | None], redis_url: str, *args: str) -> Result:
    """Run ``python -m console --broker URL ...`` in its own process group, killed afterwards."""
    full = {k: v for k, v in os.environ.items() if env.get(k, "") is not None}
    full.update({k: v for k, v in env.items() if v is not None})
    proc = subprocess.Popen(
        [sys.executable, "-m", "console", "--broker", redis_url, *args],
        env=full,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return Result(proc.returncode, out, err)


def fill(redis_url: str, queue: str, count: int) -> None:
    """Put ``count`` fake messages on a queue the way kombu's Redis transport stores them."""
    client = redis.Redis.from_url(redis_url)
    client.lpush(queue, *[json.dumps({"n": n}) for n in range(count)])
    client.close()


def test_status_json_has_the_documented_shape(
    cli_env: dict[str, str | None], redis_url: str, unique: str, state_dir: Path
) -> None:
    fill(redis_url, f"events.save_event-{unique}", 3)
    result = run(cli_env, redis_url, "status", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report) == {"broker", "console", "queues", "workers"}
    broker = report["broker"]
    assert set(broker) == BROKER_KEYS | CAPACITY_KEYS
    assert broker["state"] == "connected" and broker["source"] == "--broker"
    assert broker["reason"] is None and broker["rtt_ms"] >= 0
    log_file = str(state_dir / "console.log")
    console: dict[str, object] = {
        "running": False,
        "pid": None,
        "processes": [],
        "errors": {},
        "log_file": log_file,
    }
    console["failures_5m"] = 0
    assert report["console"] == console
    assert all(set(q) == STATUS_QUEUE_KEYS for q in report["queues"])
    depths = {q["name"]: q["ready"] for q in report["queues"]}
    assert depths[f"events.save_event-{unique}"] == 3
    assert report["workers"] == []


def test_status_json_when_the_broker_is_down(cli_env: dict[str, str | None]) -> None:
    result = run(cli_env, "redis://:hunter22@127.0.0.1:1/0", "status", "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["broker"]["state"] == "down"
    assert report["broker"]["url"] == "redis://:***@127.0.0.1:1/0"
    assert report["queues"] == [] and report["workers"] == []
    assert "hunter22" not in result.stdout + result.stderr
    assert result.stderr.startswith("error: broker")


def test_queues_list_sorts_and_prints_json(
    cli_env: dict[str, str | None], redis_url: str, unique: str
) -> None:
    fill(redis_url, f"events.process_event-{unique}", 5)
    fill(redis_url, f"cleanup-{unique}", 2)
    plain = run(cli_env, redis_url, "queues", "list")
    assert plain.exit_code == 0, plain.output
    names = [line.split()[0] for line in plain.stdout.splitlines()]
    assert names == sorted(names)
    by_size = run(cli_env, redis_url, "queues", "list", "-S", "-r")
    lines = [line.split() for line in by_size.stdout.splitlines()]
    assert lines[0] == [f"events.process_event-{unique}", "5"]
    assert lines[1] == [f"cleanup-{unique}", "2"]
    as_json = json.loads(run(cli_env, redis_url, "queues", "list", "-S", "--json").stdout)
    assert set(as_json) == {"queues"}
    assert all(set(q) == QUEUE_KEYS for q in as_json["queues"])
    assert [q["ready"] for q in as_json["queues"]][-1] == 5


def test_queues_purge_empties_one_queue(
    cli_env: dict[str, str | None], redis_url: str, unique: str, state_dir: Path
) -> None:
    fill(redis_url, f"cleanup-{unique}", 4)
    fill(redis_url, f"default-{unique}", 1)
    result = run(cli_env, redis_url, "queues", "purge", "-f", f"cleanup-{unique}")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"purged 4 messages from cleanup-{unique}"
    client = redis.Redis.from_url(redis_url)
    assert client.llen(f"cleanup-{unique}") == 0
    assert client.llen(f"default-{unique}") == 1
    client.close()
    audit = f"user {getpass.getuser()}: purge cleanup-{unique} (command line): 4 messages"
    assert audit in (state_dir / "console.log").read_text()
