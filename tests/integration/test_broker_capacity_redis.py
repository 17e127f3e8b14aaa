"""Redis capacity on a private Redis with a 64 MB maxmemory: warnings, growth, time until full."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from console.broker.capacity import BrokerCapacity
from console.broker.embedded import find_redis_server
from console.broker.redis_capacity import RedisCapacityProbe
from console.broker.urls import parse_broker_url
from tests.waiting import until

MB = 1024 * 1024


def start_private_redis(workdir: Path, *args: str) -> tuple[subprocess.Popen[bytes], Path]:
    """A redis-server of our own on a unix socket in ``workdir`` (never the shared one)."""
    sock = workdir / "redis.sock"
    proc = subprocess.Popen(
        [find_redis_server(), "--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700",
         "--save", "", "--appendonly", "no", "--dir", str(workdir), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 15
    while True:
        try:
            if redis.Redis(unix_socket_path=str(sock), socket_timeout=1).ping():
                return proc, sock
        except (redis.RedisError, OSError):
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            pytest.fail("could not start a private redis-server")
        time.sleep(0.05)


@pytest.fixture
def small_redis(tmp_path: Path) -> Iterator[Path]:
    """A private Redis limited to 64 MB that evicts any key (allkeys-lru)."""
    proc, sock = start_private_redis(
        tmp_path, "--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru"
    )
    try:
        yield sock
    finally:
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture
def safe_redis(tmp_path: Path) -> Iterator[Path]:
    """A private Redis limited to 64 MB that refuses writes when full (noeviction)."""
    proc, sock = start_private_redis(
        tmp_path, "--maxmemory", "64mb", "--maxmemory-policy", "noeviction"
    )
    try:
        yield sock
    finally:
        proc.kill()
        proc.wait(timeout=10)


def codes(cap: BrokerCapacity) -> set[str]:
    return {w.code for w in cap.warnings}


def test_eviction_policy_warns_and_filling_shortens_time_to_full(small_redis: Path) -> None:
    url = parse_broker_url(f"redis+socket://{small_redis}?virtual_host=0")
    probe = RedisCapacityProbe(url, timeout=2.0)
    client = redis.Redis(unix_socket_path=str(small_redis))
    try:
        cap = probe.poll(["fill"])
        assert cap.memory is not None
        assert cap.memory.limit == 64 * MB
        assert cap.memory.limit_source == "maxmemory"
        assert cap.memory.policy == "allkeys-lru"
        assert "eviction-policy" in codes(cap)
        assert next(w for w in cap.warnings if w.code == "eviction-policy").level == "alarm"
        assert "keys-evicted" not in codes(cap)
        payload = b"x" * 4096
        etas = []
        for _ in range(6):
            client.lpush("fill", *([payload] * 600))  # ~2.4 MB a step
            time.sleep(0.5)
            cap = probe.poll(["fill"])
            assert cap.memory is not None
            if cap.memory.seconds_to_full is not None:
                etas.append(cap.memory.seconds_to_full)
        assert cap.memory is not None and cap.memory.growth_per_second
        assert cap.memory.growth_per_second > 0
        assert len(etas) >= 3 and etas[-1] < etas[0], etas
        fill = cap.queue("fill")
        assert fill is not None and fill.bytes is not None and fill.bytes > 10 * MB
        # Fill past maxmemory: Redis evicts, and the console says so as an alarm.
        for _ in range(40):
            client.set(f"junk:{_}", b"y" * MB)
            client.lpush("fill", *([payload] * 600))
        cap = probe.poll(["fill"])
        assert "keys-evicted" in codes(cap)
        assert cap.warnings[0].level == "alarm"
    finally:
        probe.close()
        client.close()


def test_noeviction_gives_no_policy_warning(safe_redis: Path) -> None:
    url = parse_broker_url(f"redis+socket://{safe_redis}?virtual_host=0")
    probe = RedisCapacityProbe(url, timeout=2.0)
    try:
        cap = probe.poll(["celery"])
        assert cap.memory is not None and cap.memory.policy == "noeviction"
        assert cap.warnings == ()
    finally:
        probe.close()


def test_no_maxmemory_on_a_local_redis_compares_with_host_memory(redis_url: str) -> None:
    probe = RedisCapacityProbe(parse_broker_url(redis_url), timeout=2.0)
    try:
        cap = probe.poll(["celery"])
    finally:
        probe.close()
    assert cap.memory is not None
    assert cap.memory.limit_source in ("host", "maxmemory")
    if cap.memory.limit_source == "host":
        assert cap.memory.limit and cap.memory.limit > cap.memory.used  # type: ignore[operator]


def test_status_json_warns_that_queued_tasks_can_be_evicted(
    small_redis: Path, state_dir: Path
) -> None:
    from tests.integration.test_cli_headless import run

    client = redis.Redis(unix_socket_path=str(small_redis))
    client.lpush("default", *([b"z" * 1024] * 2000))
    client.close()
    env: dict[str, str | None] = {
        "SENTRY_CONSOLE_STATE_DIR": str(state_dir),
        "SENTRY_BROKER_URL": None,
        "SENTRY_CONF": None,
        "SENTRY_QUEUE_SUFFIX": None,
    }
    result = run(env, f"redis+socket://{small_redis}", "status", "--json")
    assert result.exit_code == 0, result.output
    broker = json.loads(result.stdout)["broker"]
    memory = broker["memory"]
    assert memory["max"] == 64 * MB and memory["policy"] == "allkeys-lru"
    assert memory["limit_source"] == "maxmemory"
    assert 0 < memory["used"] <= memory["peak"]
    assert broker["warnings"][0]["code"] == "eviction-policy"
    assert "noeviction" in broker["warnings"][0]["message"]
    default = next(q for q in json.loads(result.stdout)["queues"] if q["name"] == "default")
    assert default["bytes"] > 1 * MB and default["unacked"] == 0
    text = run(env, f"redis+socket://{small_redis}", "status")
    assert "allkeys-lru" in text.stdout and "of 64.0M maxmemory" in text.stdout, text.output


async def test_screen_warns_and_time_to_full_falls_while_a_queue_fills(
    small_redis: Path, state_dir: Path, unique: str
) -> None:
    from console.runtime import ConsoleRuntime
    from console.settings import Settings
    from console.ui.app import ConsoleApp
    from console.ui.capacity import CapacityWarnings
    from console.ui.statusbar import StatusBar
    from console.ui.tables import QueueTable
    from tests.cluster_support.app import make_app

    url = f"redis+socket://{small_redis}"
    settings = Settings(
        broker=None,
        broker_source="test",
        state_dir=state_dir,
        worker_groups=(),
        cron=False,
        refresh_interval=0.5,
    ).with_broker(url, "test")
    celery_app = make_app(url, unique)
    queue = celery_app.conf.task_default_queue
    runtime = ConsoleRuntime(settings, celery_app)
    runtime.start()
    console = ConsoleApp(runtime, live=True)
    client = redis.Redis(unix_socket_path=str(small_redis))
    try:
        async with console.run_test(size=(120, 30)) as pilot:
            warnings = console.query_one(CapacityWarnings)
            await until(pilot, lambda: warnings.display, "the warnings line", 20)
            assert "allkeys-lru can evict queued tasks" in str(warnings.render())
            etas: list[float] = []
            taken: set[float] = set()
            for _ in range(8):
                client.lpush(queue, *([b"x" * 4096] * 500))
                await until(
                    pilot,
                    lambda: console.last_data and console.last_data.taken_at not in taken,
                    "a poll",
                    20,
                )
                data = console.last_data
                assert data is not None and data.capacity is not None
                taken.add(data.taken_at)
                assert data.capacity.memory is not None
                if data.capacity.memory.seconds_to_full is not None:
                    etas.append(data.capacity.memory.seconds_to_full)
                await pilot.pause(0.3)
            assert len(etas) >= 3 and etas[-1] < etas[0], etas
            await until(
                pilot,
                lambda: "full in" in str(console.query_one(StatusBar).render()),
                "eta",
                20,
            )
            table = console.query_one(QueueTable)
            assert table.capacity_columns
    finally:
        client.close()
        runtime.shutdown()


def test_a_redis_that_refuses_commands_leaves_those_figures_blank(tmp_path: Path) -> None:
    proc, sock = start_private_redis(
        tmp_path, "--rename-command", "MEMORY", "", "--rename-command", "ZRANGE", ""
    )
    try:
        url = parse_broker_url(f"redis+socket://{sock}")
        redis.Redis(unix_socket_path=str(sock)).lpush("q", b"m")
        probe = RedisCapacityProbe(url, timeout=2.0)
        try:
            cap = probe.poll(["q"])
        finally:
            probe.close()
        row = cap.queue("q")
        assert row is not None and row.bytes is None and row.unacked is None
        assert cap.unacked == 0 and cap.memory is not None and cap.memory.used
    finally:
        proc.kill()
        proc.wait(timeout=10)
