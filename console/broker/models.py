"""What the broker probes report, as plain data: no broker client is imported here.

The snapshot a server pushes to its clients holds these, so a client that only shows them
(an attached TUI, ``ctl``) never loads redis-py or amqp.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

HealthState = Literal["connected", "connecting", "down"]


@dataclass(frozen=True)
class BrokerHealth:
    """One health reading; ``last_ok`` is the wall-clock time of the last success."""

    state: HealthState
    reason: str | None
    rtt_ms: float | None
    server_version: str | None
    reconnects: int
    last_ok: float | None


@dataclass(frozen=True)
class QueueDepth:
    """One queue's figures; None where the broker does not tell."""

    name: str
    ready: int | None
    consumers: int | None
    unacked: int | None
    exists: bool
