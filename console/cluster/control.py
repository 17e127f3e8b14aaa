"""Celery remote control: ping, inspect, pool grow and shrink, shutdown, revoke, enable events."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from celery import Celery
from kombu import Connection


class RemoteControlError(RuntimeError):
    """A remote-control command failed or the target worker did not answer."""


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
    """Commands to workers through Celery's broadcast mailbox, each with a reply timeout."""

    def __init__(self, app: Celery, *, timeout: float = 1.0) -> None:
        self._app = app
        self.timeout = timeout

    def _broadcast(
        self,
        command: str,
        *,
        destination: Sequence[str] | None = None,
        arguments: dict[str, Any] | None = None,
        reply: bool = False,
    ) -> list[dict[str, Any]]:
        conn = connect(self._app)
        try:
            replies = self._app.control.broadcast(
                command,
                arguments=arguments,
                destination=list(destination) if destination else None,
                connection=conn,
                reply=reply,
                timeout=self.timeout,
                limit=len(destination) if destination and reply else None,
            )
        except RemoteControlError:
            raise
        except Exception as exc:
            raise RemoteControlError(f"{command} failed: {exc}") from exc
        finally:
            conn.release()
        return list(replies or [])

    def _command(self, command: str, hostname: str, arguments: dict[str, Any]) -> Any:
        replies = self._broadcast(command, destination=[hostname], arguments=arguments, reply=True)
        for reply in replies:
            if hostname in reply:
                answer = reply[hostname]
                if isinstance(answer, dict) and "error" in answer:
                    raise RemoteControlError(f"{command} on {hostname}: {answer['error']}")
                return answer
        raise RemoteControlError(f"{command}: no reply from {hostname} within {self.timeout:g} s")

    def ping(self, destination: Sequence[str] | None = None) -> dict[str, bool]:
        """Ping workers; map each hostname to whether it answered in time."""
        replies = self._broadcast("ping", destination=destination, reply=True)
        answered = {hostname: True for reply in replies for hostname in reply}
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

    def pool_grow(self, hostname: str, n: int = 1) -> None:
        """Add ``n`` processes to the pool of ``hostname``."""
        self._command("pool_grow", hostname, {"n": n})

    def pool_shrink(self, hostname: str, n: int = 1) -> None:
        """Remove ``n`` processes from the pool of ``hostname``."""
        self._command("pool_shrink", hostname, {"n": n})

    def shutdown(self, hostname: str) -> None:
        """Ask ``hostname`` for a warm shutdown (tasks in flight finish)."""
        self._broadcast("shutdown", destination=[hostname])

    def revoke(self, uuid: str, *, terminate: bool = False) -> None:
        """Revoke a task everywhere; with ``terminate`` also kill it if it is running."""
        self._broadcast(
            "revoke", arguments={"task_id": uuid, "terminate": terminate, "signal": "SIGTERM"}
        )

    def enable_events(self) -> None:
        """Ask every worker to send task events."""
        self._broadcast("enable_events")
