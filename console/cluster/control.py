"""Celery remote control: ping, inspect, pool grow and shrink, shutdown, revoke, enable events."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from typing import Any

from celery import Celery
from kombu import Connection

#: The fewest processes a pool may keep: with none, the worker still takes tasks it cannot run.
MIN_POOL = 1


class RemoteControlError(RuntimeError):
    """A remote-control command failed or the target worker did not answer."""


class PoolLimit(RemoteControlError):
    """A pool change refused before it was sent: it would leave the pool without a process."""


def connect(app: Celery) -> Connection:
    """Open a fresh broker connection for ``app``, failing fast when the broker is down."""
    conn = app.connection_for_write()
    try:
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0.5, timeout=5)
    except Exception as exc:
        conn.release()
        raise RemoteControlError(f"broker unreachable: {exc}") from exc
    return conn


class RemoteControl:
    """Commands to workers through Celery's broadcast mailbox, each with a reply timeout.

    One broker connection serves every command, one command at a time; it is opened on first
    use and dropped after any failure, so the next command connects afresh (and fails fast
    while the broker is down).
    """

    def __init__(self, app: Celery, *, timeout: float = 1.0) -> None:
        self._app = app
        self.timeout = timeout
        self._lock = threading.Lock()
        self._conn: Connection | None = None
        self.duplicates: frozenset[str] = frozenset()
        """Node names two workers answered to in the last ping (two consoles, one name)."""

    def close(self) -> None:
        """Drop the connection (the next command opens a new one)."""
        with self._lock:
            self._drop()

    def close_soon(self) -> None:
        """Drop the connection on a thread of its own: kombu's release can wait out a pending
        reply read (~0.5 s on Redis), which nobody needs to wait for."""
        threading.Thread(target=self.close, name="control-close", daemon=True).start()

    def _drop_soon(self) -> None:
        """Forget the connection now; release it on a thread (release waits out that read)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            threading.Thread(target=conn.release, name="control-drop", daemon=True).start()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.release()

    def _broadcast(
        self,
        command: str,
        *,
        destination: Sequence[str] | None = None,
        arguments: dict[str, Any] | None = None,
        reply: bool = False,
        timeout: float | None = None,
    ) -> list[dict[str, Any]]:
        limit = len(destination) if destination and reply else None
        with self._lock:
            if self._conn is None:
                self._conn = connect(self._app)
            try:
                replies = list(
                    self._app.control.broadcast(
                        command,
                        arguments=arguments,
                        destination=list(destination) if destination else None,
                        connection=self._conn,
                        reply=reply,
                        timeout=self.timeout if timeout is None else timeout,
                        limit=limit,
                    )
                    or []
                )
            except Exception as exc:
                self._drop()
                raise RemoteControlError(f"{command} failed: {exc}") from exc
            if reply and (limit is None or len(replies) < limit):
                # The wait ended by its timeout. On Redis that leaves a read of the reply queue
                # in flight on this connection, and it swallows the replies to the next command
                # (seen: `active_queues` unanswered right after a broadcast ping). Start afresh.
                self._drop_soon()
        return replies

    def _command(self, command: str, hostname: str, arguments: dict[str, Any]) -> Any:
        replies = self._broadcast(command, destination=[hostname], arguments=arguments, reply=True)
        for reply in replies:
            if hostname in reply:
                answer = reply[hostname]
                if isinstance(answer, dict) and "error" in answer:
                    raise RemoteControlError(f"{command} on {hostname}: {answer['error']}")
                return answer
        raise RemoteControlError(f"{command}: no reply from {hostname} within {self.timeout:g} s")

    def ping(
        self, destination: Sequence[str] | None = None, *, timeout: float | None = None
    ) -> dict[str, bool]:
        """Ping workers (waiting ``timeout``, by default the shared one); who answered in time."""
        replies = self._broadcast("ping", destination=destination, reply=True, timeout=timeout)
        names = [hostname for reply in replies for hostname in reply]
        self.duplicates = frozenset(n for n in names if names.count(n) > 1)
        answered = dict.fromkeys(names, True)
        for hostname in destination or ():
            answered.setdefault(hostname, False)
        return answered

    def inspect(self, method: str, destination: Sequence[str] | None = None) -> dict[str, Any]:
        """Run one ``inspect`` method (stats, active, active_queues ...); replies by hostname."""
        replies = self._broadcast(method, destination=destination, reply=True)
        merged: dict[str, Any] = {}
        for reply in replies:
            merged.update(reply)
        return merged

    def pool_grow(self, hostname: str, n: int = 1) -> str:
        """Add ``n`` processes to the pool of ``hostname``; the worker's reply."""
        return reply_text(self._command("pool_grow", hostname, {"n": n}))

    def pool_size(self, hostname: str) -> int | None:
        """How many processes the pool of ``hostname`` has now (None if its stats do not say)."""
        stats = self._command("stats", hostname, {})
        pool = stats.get("pool") if isinstance(stats, dict) else None
        if not isinstance(pool, dict):
            return None
        processes = pool.get("processes")  # follows grow and shrink, unlike max-concurrency
        if isinstance(processes, list):
            return len(processes)
        size = pool.get("max-concurrency")
        return size if isinstance(size, int) else None

    def pool_shrink(self, hostname: str, n: int = 1) -> str:
        """Remove ``n`` processes from the pool of ``hostname``; never below :data:`MIN_POOL`."""
        size = self.pool_size(hostname)
        if size is not None and size - n < MIN_POOL:
            noun = "process" if size == 1 else "processes"
            raise PoolLimit(f"{hostname}: pool has {size} {noun}, it keeps at least {MIN_POOL}")
        try:
            return reply_text(self._command("pool_shrink", hostname, {"n": n}))
        except RemoteControlError as exc:
            if "busy" in str(exc):  # Celery cannot shrink while every process runs a task
                raise PoolLimit(f"{hostname}: every pool process is busy, try again") from exc
            raise

    def revoke(self, uuid: str, *, terminate: bool = False) -> list[str]:
        """Revoke a task everywhere; with ``terminate`` also kill it if it is running.

        Returns the workers that confirmed within the timeout (a busy or cut-off worker still
        gets the revoke when its broadcast queue is read)."""
        arguments = {"task_id": uuid, "terminate": terminate, "signal": "SIGTERM"}
        replies = self._broadcast("revoke", arguments=arguments, reply=True)
        return sorted(hostname for reply in replies for hostname in reply)

    def pool_restart(self, hostname: str) -> str:
        """Restart the pool processes of ``hostname`` (the worker must allow pool restarts)."""
        return reply_text(self._command("pool_restart", hostname, {"reload": False}))

    def add_consumer(self, hostname: str, queue: str) -> str:
        """Make ``hostname`` start consuming from ``queue``; the worker's reply."""
        return reply_text(self._command("add_consumer", hostname, {"queue": queue}))

    def cancel_consumer(self, hostname: str, queue: str) -> str:
        """Make ``hostname`` stop consuming from ``queue``; the worker's reply."""
        return reply_text(self._command("cancel_consumer", hostname, {"queue": queue}))

    def shutdown(self, hostname: str) -> None:
        """Ask one worker for a warm shutdown (it sends no reply: it goes offline instead)."""
        self._broadcast("shutdown", destination=[hostname])

    def enable_events(self) -> None:
        """Ask every worker to send task events."""
        self._broadcast("enable_events")

    def heartbeat(self) -> None:
        """Ask every worker to send a heartbeat event now."""
        self._broadcast("heartbeat")


def reply_text(answer: Any) -> str:
    """A worker's reply as one line: ``{"ok": "add consumer q"}`` is ``add consumer q``."""
    if isinstance(answer, dict) and "ok" in answer:
        return str(answer["ok"])
    return str(answer)
