"""A command that waited out its timeout never costs the next command its replies (Redis)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from console.cluster import RemoteControl
from tests.cluster_support.app import make_app

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def two_workers(redis_url: str, unique: str, tmp_path: Path) -> Iterator[list[str]]:
    """Two real workers on the test's Redis database, killed by process group afterwards."""
    names = [f"r{n}-{unique}@{os.uname().nodename}" for n in (1, 2)]
    env = dict(os.environ, SC_TEST_BROKER_URL=redis_url, SC_TEST_SUFFIX=unique)
    procs = []
    try:
        for name in names:
            cmd = [sys.executable, "-m", "celery", "-A", "tests.cluster_support.app", "worker",
                   "-n", name, "-c", "1", "--without-mingle", "--without-gossip"]  # fmt: skip
            with open(tmp_path / f"{name}.log", "wb") as log:
                procs.append(
                    subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
                )  # fmt: skip
        yield names
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def test_replies_after_a_broadcast_that_waited_out_its_timeout(
    two_workers: list[str], redis_url: str, unique: str
) -> None:
    control = RemoteControl(make_app(redis_url, unique), timeout=0.5)
    try:
        deadline = time.monotonic() + 30
        while not all(control.ping(two_workers).values()):
            assert time.monotonic() < deadline, "the workers did not answer"
        for _ in range(3):
            # A discovery ping (no destination) always waits out the whole timeout ...
            assert set(control.ping()) >= set(two_workers)
            # ... and the next command, on the same control, still gets every reply.
            replies = control.inspect("active_queues", two_workers)
            assert sorted(replies) == sorted(two_workers), replies
            assert sorted(control.inspect("stats")) == sorted(two_workers)  # waits it out too
            assert control.pool_size(two_workers[0]) == 1
    finally:
        control.close()
