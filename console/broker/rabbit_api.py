"""The RabbitMQ management API, where enabled: per-queue unacked, bytes, rates and node memory.

One HTTP request per poll, alternating between the queues of the broker's vhost and the nodes,
with a timeout; stdlib urllib only. No redirect is followed: urllib would resend the Basic
credentials to wherever it points. An absent or unreachable API is reported once as a note and
retried every ``RETRY_AFTER`` seconds; the AMQP figures stay meanwhile.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from console.broker.capacity import (
    BrokerCapacity,
    BrokerMemory,
    CapacityWarning,
    MemoryTrend,
    QueueCapacity,
    memory_warnings,
)
from console.broker.errors import describe_error
from console.broker.urls import BrokerURL

API_PORT = 15672
RETRY_AFTER = 30.0
QUEUE_COLUMNS = (
    "name,messages_ready,messages_unacknowledged,message_bytes,head_message_timestamp,"
    "message_stats.publish_details.rate,message_stats.deliver_get_details.rate"
)
NODE_COLUMNS = "name,mem_used,mem_limit,mem_alarm,disk_free,disk_free_limit,disk_free_alarm"


@dataclass(frozen=True)
class QueueStats:
    """One queue as the management API reports it."""

    name: str
    ready: int | None
    unacked: int | None
    bytes: int | None
    publish_rate: float | None
    deliver_rate: float | None
    head_timestamp: float | None


def api_base(url: BrokerURL, override: str | None = None) -> str:
    """The API's base URL: ``override`` (``CONSOLE_RABBITMQ_API``), else the broker host:15672."""
    if override:
        return override.rstrip("/")
    host = url.host or "127.0.0.1"
    host = f"[{host}]" if ":" in host else host
    return f"{'https' if url.tls else 'http'}://{host}:{API_PORT}"


def shown_base(base: str) -> str:
    """The base URL without any user or password, for messages."""
    parts = urlsplit(base)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Refuse every redirect: urllib would resend the Authorization header to the new address."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        """Follow nothing; the 3xx answer surfaces as an HTTPError."""
        return None


def _opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(_NoRedirects())


class RabbitManagementAPI:
    """Reads the management API one request per poll and keeps the last answer of each kind."""

    def __init__(
        self,
        url: BrokerURL,
        override: str | None = None,
        *,
        timeout: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        base = api_base(url, override)
        parts = urlsplit(base)
        user = parts.username or url.username or "guest"
        password = parts.password if parts.username else (url.password or "")
        self.base = shown_base(base)
        self.vhost = url.vhost or "/"
        self.timeout = timeout
        self.requests = 0
        self._opener = _opener()
        self._auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self._clock = clock
        self._turn = 0
        self._retry_at = 0.0
        self.error: str | None = None
        self.queues: dict[str, QueueStats] = {}
        self.node: Mapping[str, Any] | None = None
        self._trend = MemoryTrend()
        self._memory: BrokerMemory | None = None

    def _get(self, path: str) -> Any:
        request = urllib.request.Request(
            self.base + path, headers={"Authorization": self._auth, "Accept": "application/json"}
        )
        self.requests += 1
        with self._opener.open(request, timeout=self.timeout) as reply:
            return json.loads(reply.read())

    def refresh(self) -> None:
        """Make this poll's one request (or none while waiting to retry); never raises."""
        now = self._clock()
        if self.error is not None and now < self._retry_at:
            return
        asking_nodes = self._turn % 2 == 1
        self._turn += 1
        try:
            if asking_nodes:
                self._read_nodes(self._get(f"/api/nodes?columns={NODE_COLUMNS}"), now)
            else:
                path = f"/api/queues/{quote(self.vhost, safe='')}?columns={QUEUE_COLUMNS}"
                self._read_queues(self._get(path))
        except urllib.error.HTTPError as exc:
            if 300 <= exc.code < 400:
                # Credentials go only where they were configured for; point the setting there.
                self._fail(f"HTTP {exc.code} redirect not followed with credentials", now)
            else:
                self._fail(f"HTTP {exc.code} {exc.reason}", now)
        except (OSError, ValueError, TypeError, KeyError) as exc:
            self._fail(describe_error(exc) if isinstance(exc, OSError) else "bad answer", now)
        else:
            self.error = None

    def _fail(self, reason: str, now: float) -> None:
        self.error = f"management API at {self.base} not reachable ({reason}): AMQP figures only"
        self._retry_at = now + RETRY_AFTER

    def _read_queues(self, rows: Sequence[Mapping[str, Any]]) -> None:
        queues = {}
        for row in rows:
            stats = row.get("message_stats") or {}
            queues[str(row["name"])] = QueueStats(
                name=str(row["name"]),
                ready=_num(row.get("messages_ready")),
                unacked=_num(row.get("messages_unacknowledged")),
                bytes=_num(row.get("message_bytes")),
                publish_rate=_rate(stats.get("publish_details")),
                deliver_rate=_rate(stats.get("deliver_get_details")),
                head_timestamp=_float(row.get("head_message_timestamp")),
            )
        self.queues = queues

    def _read_nodes(self, rows: Sequence[Mapping[str, Any]], now: float) -> None:
        node = rows[0] if rows else None
        self.node = node
        if node is None:
            return
        used = _num(node.get("mem_used"))
        limit = _num(node.get("mem_limit"))
        rate = self._trend.add(now, used) if used is not None else None
        self._memory = BrokerMemory(
            used=used,
            limit=limit,
            limit_source="watermark" if limit else None,
            growth_per_second=rate,
            seconds_to_full=MemoryTrend.seconds_to_full(used or 0, limit, rate),
        )

    def capacity(self, names: Sequence[str]) -> BrokerCapacity:
        """What the last answers tell about ``names`` and the node."""
        now = self._clock()
        rows = []
        for name in names:
            q = self.queues.get(name)
            if q is None:
                rows.append(QueueCapacity(name))
                continue
            age = max(now - q.head_timestamp, 0.0) if q.head_timestamp else None
            rows.append(
                QueueCapacity(
                    name,
                    bytes=q.bytes,
                    unacked=q.unacked,
                    oldest_age=age,
                    publish_rate=q.publish_rate,
                    deliver_rate=q.deliver_rate,
                )
            )
        warnings = memory_warnings(self._memory) if self._memory else []
        node = self.node or {}
        if node.get("mem_alarm"):
            warnings.insert(0, CapacityWarning("memory-alarm", _ALARM_MEMORY, "alarm"))
        if node.get("disk_free_alarm"):
            warnings.insert(0, CapacityWarning("disk-alarm", _ALARM_DISK, "alarm"))
        known = [q.unacked for q in rows if q.unacked is not None]
        return BrokerCapacity(
            memory=self._memory,
            queues=tuple(rows),
            unacked=sum(known) if self.queues else None,
            warnings=tuple(warnings),
            notes=(self.error,) if self.error else (),
        )


_ALARM_MEMORY = (
    "RabbitMQ memory alarm: publishers are blocked until memory falls below the watermark; "
    "drain queues or raise vm_memory_high_watermark"
)
_ALARM_DISK = (
    "RabbitMQ disk alarm: publishers are blocked until free disk rises above disk_free_limit; "
    "free disk space"
)


def _num(value: object) -> int | None:
    return int(value) if isinstance(value, int | float) else None


def _float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _rate(details: object) -> float | None:
    return _float(details.get("rate")) if isinstance(details, Mapping) else None


__all__ = ["API_PORT", "QueueStats", "RabbitManagementAPI", "api_base", "shown_base"]
