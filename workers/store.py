"""SQLite event store: WAL mode, idempotent by event id, safe across forked pool processes."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any

BUSY_TIMEOUT_MS = 30_000
_all_stores: weakref.WeakSet[EventStore] = weakref.WeakSet()

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    event_id TEXT PRIMARY KEY,
    project TEXT NOT NULL,
    level TEXT NOT NULL,
    message TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    platform TEXT NOT NULL,
    timestamp REAL NOT NULL,
    received REAL NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_received ON events (received);
CREATE TABLE IF NOT EXISTS heartbeats (
    name TEXT PRIMARY KEY,
    ts REAL NOT NULL
);
"""


class EventStore:
    """Events and heartbeats in one SQLite file; one connection per process, opened lazily."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        """Remember the path; nothing is opened until first use."""
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None
        self._pid = -1
        self._lock = threading.RLock()
        _all_stores.add(self)

    def _after_fork_in_child(self) -> None:
        # The parent's lock may have been held by another thread at fork time, and
        # its connection must never be used here: start over with fresh ones.
        self._lock = threading.RLock()
        self._conn = None
        self._pid = -1

    def _connection(self) -> sqlite3.Connection:
        # A connection inherited across fork() must never be used by the child:
        # each pool process opens its own.
        pid = os.getpid()
        if self._conn is not None and self._pid == pid:
            return self._conn
        with self._lock:
            if self._conn is None or self._pid != pid:
                self._conn = self._open()
                self._pid = pid
        return self._conn

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
        )
        # busy_timeout first: switching to WAL and creating tables take locks too.
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            conn.close()
            raise sqlite3.OperationalError(f"{self.path}: cannot enable WAL (got {mode!r})")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.executescript(_SCHEMA)
        return conn

    def journal_mode(self) -> str:
        """The journal mode SQLite reports for this database ("wal" once open)."""
        return str(self._connection().execute("PRAGMA journal_mode").fetchone()[0]).lower()

    def save(self, event: Mapping[str, Any]) -> bool:
        """Insert a normalised event; return False when its event_id was already stored."""
        row = (
            str(event["event_id"]),
            str(event.get("project", "default")),
            str(event.get("level", "error")),
            str(event.get("message", "")),
            str(event.get("fingerprint", "")),
            str(event.get("platform", "other")),
            float(event["timestamp"]),
            float(event["received"]),
            json.dumps(event, sort_keys=True, separators=(",", ":"), default=str),
        )
        with self._lock:
            cursor = self._connection().execute(
                "INSERT OR IGNORE INTO events (event_id, project, level, message, fingerprint,"
                " platform, timestamp, received, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
        return cursor.rowcount == 1

    def get(self, event_id: str) -> dict[str, Any] | None:
        """The stored event (its full normalised data), or None."""
        found = (
            self._connection()
            .execute("SELECT data FROM events WHERE event_id = ?", (event_id,))
            .fetchone()
        )
        return None if found is None else dict(json.loads(found[0]))

    def count(self) -> int:
        """Number of stored events."""
        return int(self._connection().execute("SELECT COUNT(*) FROM events").fetchone()[0])

    def delete_older_than(self, cutoff_ts: float) -> int:
        """Delete events received before `cutoff_ts` (unix seconds); return how many went."""
        with self._lock:
            cursor = self._connection().execute(
                "DELETE FROM events WHERE received < ?", (float(cutoff_ts),)
            )
        return int(cursor.rowcount)

    def record_heartbeat(self, ts: float, name: str = "cron") -> None:
        """Record that `name` was alive at `ts`; one row per name, so the table stays small."""
        with self._lock:
            self._connection().execute(
                "INSERT INTO heartbeats (name, ts) VALUES (?, ?)"
                " ON CONFLICT(name) DO UPDATE SET ts = MAX(ts, excluded.ts)",
                (name, float(ts)),
            )

    def last_heartbeat(self, name: str | None = None) -> float | None:
        """The latest heartbeat time (of `name`, or of any name), or None if there is none."""
        if name is None:
            row = self._connection().execute("SELECT MAX(ts) FROM heartbeats").fetchone()
        else:
            row = (
                self._connection()
                .execute("SELECT ts FROM heartbeats WHERE name = ?", (name,))
                .fetchone()
            )
        return None if row is None or row[0] is None else float(row[0])

    def close(self) -> None:
        """Close this process's connection, if it opened one."""
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None
            self._pid = -1


_stores: dict[Path, EventStore] = {}
_stores_lock = threading.Lock()


def store_at(path: str | os.PathLike[str]) -> EventStore:
    """The process-wide EventStore for `path` (created on first request)."""
    key = Path(path)
    with _stores_lock:
        store = _stores.get(key)
        if store is None:
            store = _stores[key] = EventStore(key)
        return store


def _reset_stores_after_fork() -> None:
    global _stores_lock
    _stores_lock = threading.Lock()
    for store in list(_all_stores):
        store._after_fork_in_child()


os.register_at_fork(after_in_child=_reset_stores_after_fork)
