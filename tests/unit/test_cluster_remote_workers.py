"""Near and far: which workers the console supervises, with Celery's node name expansion."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from console.cluster import WorkerInfo
from console.runtime import celery_node_name, local_node_names, remote_worker_names
from console.settings import Settings, WorkerGroup, resolve_settings
from console.supervision import ProcessSnapshot, ProcessState

HOST = socket.gethostname()


def proc(name: str, group: str, pid: int | None) -> ProcessSnapshot:
    """A running process snapshot."""
    return ProcessSnapshot(
        name, group, ProcessState.RUNNING, pid, pid, 0.0, 1.0, 0, None, None, None, None, ""
    )


def worker(hostname: str, pid: int | None = None) -> WorkerInfo:
    """A worker as the cluster state reports it."""
    return WorkerInfo(hostname, True, 0.0, pid, 0, 0, 0, 2, (), None, None)


SETTINGS = Settings(
    broker=None,
    broker_source="test",
    worker_groups=(
        WorkerGroup(name="worker"),
        WorkerGroup(name="io", hostname="{name}{n}.%n@%h"),
        WorkerGroup(name="bare", hostname="bare-{n}"),
    ),
)


def test_celery_expansion() -> None:
    short = HOST.partition(".")[0]
    assert celery_node_name("w-1@%h") == f"w-1@{HOST}"
    assert celery_node_name("x.%n@%h") == f"x.{short}@{HOST}"
    assert celery_node_name("bare") == "celery@bare"  # no "@": Celery reads it as the host


def test_local_names_follow_the_supervised_programs_after_scaling() -> None:
    processes = [proc("worker-1", "worker", 10), proc("worker-3", "worker", 11)]
    processes += [proc("io-2", "io", 12), proc("bare-1", "bare", 13), proc("cron", "cron", 14)]
    short = HOST.partition(".")[0]
    assert local_node_names(SETTINGS, processes) == {
        f"worker-1@{HOST}",
        f"worker-3@{HOST}",
        f"io2.{short}@{HOST}",
        "celery@bare-1",
        # each slot's second name, which every other start-first replacement runs under
        f"worker-1-b@{HOST}",
        f"worker-3-b@{HOST}",
        f"io2.{short}-b@{HOST}",
        "celery@bare-1-b",
    }


def test_remote_workers_are_the_ones_not_supervised() -> None:
    processes = [proc("worker-1", "worker", 10), proc("worker-2", "worker", 11)]
    workers = [
        worker(f"worker-1@{HOST}", 10),
        worker("custom@" + HOST, 11),  # renamed by hand, but its pid is our worker-2
        worker(f"worker-2@{HOST}.other", 11),  # same pid, another host: remote
        worker(f"handmade@{HOST}", 999),  # started by hand on this host
        worker("worker-1@ops-2", 10),  # same name pattern, another machine
    ]
    assert remote_worker_names(SETTINGS, processes, workers) == {
        f"worker-2@{HOST}.other",
        f"handmade@{HOST}",
        "worker-1@ops-2",
    }


def test_offline_drop_after_setting(tmp_path: Path) -> None:
    conf = tmp_path / "sentry.conf.py"
    conf.write_text("CONSOLE_OFFLINE_DROP_AFTER = 45\n")
    assert resolve_settings(env={"SENTRY_CONF": str(conf)}).offline_drop_after == 45.0
    assert resolve_settings(env={}).offline_drop_after == 300.0
    conf.write_text("CONSOLE_OFFLINE_DROP_AFTER = 0\n")
    with pytest.raises(ValueError, match="CONSOLE_OFFLINE_DROP_AFTER"):
        resolve_settings(env={"SENTRY_CONF": str(conf)})
