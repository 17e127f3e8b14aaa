"""The SQLite event store: WAL mode, idempotency, retention, heartbeats, concurrent writers."""

from __future__ import annotations

import multiprocessing
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from workers.store import EventStore, store_at


def event(n: int, received: float = 1000.0) -> dict[str, Any]:
    """A normalised event with a distinct id per `n`."""
    return {
        "event_id": f"{n:032x}",
        "project": "default",
        "level": "error",
        "message": f"message {n}",
        "fingerprint": "f" * 40,
        "platform": "python",
        "timestamp": received - 1,
        "received": received,
        "tags": {"n": str(n)},
    }


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EventStore]:
    """A fresh store in a directory that does not exist yet."""
    result = EventStore(tmp_path / "nested" / "dir" / "events.sqlite3")
    yield result
    result.close()


def test_creates_parent_dirs_and_uses_wal(store: EventStore) -> None:
    assert store.count() == 0
    assert store.path.exists()
    assert store.journal_mode() == "wal"
    # The mode is persistent: a fresh, plain connection sees it too.
    with sqlite3.connect(store.path) as other:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_busy_timeout_is_set(store: EventStore) -> None:
    store.count()
    conn = store._connection()
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 10_000


def test_save_is_idempotent_by_event_id(store: EventStore) -> None:
    assert store.save(event(1)) is True
    assert store.save(event(1)) is False
    changed = dict(event(1), message="changed")
    assert store.save(changed) is False
    assert store.count() == 1
    saved = store.get(f"{1:032x}")
    assert saved is not None
    assert saved["message"] == "message 1"
    assert saved["tags"] == {"n": "1"}
    assert store.get("0" * 32) is None


def test_delete_older_than(store: EventStore) -> None:
    for n in range(10):
        store.save(event(n, received=100.0 + n))
    assert store.delete_older_than(105.0) == 5
    assert store.count() == 5
    assert store.delete_older_than(105.0) == 0
    assert store.delete_older_than(1e12) == 5
    assert store.count() == 0


def test_heartbeats(store: EventStore) -> None:
    assert store.last_heartbeat() is None
    store.record_heartbeat(10.0)
    store.record_heartbeat(30.0)
    store.record_heartbeat(20.0)  # late arrival does not move time backwards
    assert store.last_heartbeat() == 30.0
    store.record_heartbeat(40.0, name="other")
    assert store.last_heartbeat("cron") == 30.0
    assert store.last_heartbeat() == 40.0
    rows = store._connection().execute("SELECT COUNT(*) FROM heartbeats").fetchone()[0]
    assert rows == 2


def test_store_at_returns_one_store_per_path(tmp_path: Path) -> None:
    assert store_at(tmp_path / "a.db") is store_at(tmp_path / "a.db")
    assert store_at(tmp_path / "a.db") is not store_at(tmp_path / "b.db")


def _write_range(store: EventStore, start: int, stop: int, queue: Any) -> None:
    try:
        created = sum(store.save(event(n)) for n in range(start, stop))
        store.record_heartbeat(float(stop))
        queue.put(("ok", created))
    except Exception as exc:  # reported to the parent, which fails the test
        queue.put(("error", repr(exc)))


def test_concurrent_writers_from_two_processes(store: EventStore) -> None:
    # The parent opens its connection first: forked children must not reuse it.
    assert store.count() == 0
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    # Overlapping ranges: 0-599 and 400-999, so 200 ids are written by both.
    procs = [
        ctx.Process(target=_write_range, args=(store, 0, 600, results)),
        ctx.Process(target=_write_range, args=(store, 400, 1000, results)),
    ]
    try:
        for proc in procs:
            proc.start()
        outcomes = [results.get(timeout=60) for _ in procs]
        for proc in procs:
            proc.join(timeout=30)
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.kill()
                proc.join()
    assert all(kind == "ok" for kind, _ in outcomes), outcomes
    assert sum(created for _, created in outcomes) == 1000
    assert store.count() == 1000
    assert store.last_heartbeat() == 1000.0
    assert all(proc.exitcode == 0 for proc in procs)
