"""The broker-side leader lease every cron process competes for, and its per-entry slot records.

A coordinator answers two questions: am I the sender now (``refresh``), and may I send this
entry's slot (``claim``)? ``claim`` is the fence: it succeeds only while the lease is still this
process's, checked by the broker itself at the moment the slot is recorded, and only for a slot
later than the last one recorded. A process that was frozen or cut off and wakes up believing
it leads fails the claim, so it cannot send a slot another process already sent.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from typing import Protocol


class BrokerUnavailable(Exception):
    """The broker could not be reached or answered with an error; the role is unknown."""


@dataclass(frozen=True)
class LeaseTiming:
    """Lease durations derived from the takeover target."""

    takeover: float
    """Seconds within which a standby replaces a killed leader."""

    @property
    def ttl(self) -> float:
        """How long a Redis lease lives without renewal."""
        return self.takeover * 0.6

    @property
    def poll(self) -> float:
        """Seconds between lease checks (renewal by the leader, acquisition by standbys)."""
        return max(0.05, self.takeover * 0.2)

    @property
    def heartbeat(self) -> int:
        """AMQP heartbeat in whole seconds: the broker drops a silent (frozen) leader after it."""
        return max(1, round(self.takeover * 0.4))

    @property
    def token_refresh(self) -> float:
        """Seconds between fresh AMQP tokens: well inside any consumer timeout (1 min at least)."""
        return min(30.0, max(1.0, self.takeover))

    @property
    def io_timeout(self) -> float:
        """Socket timeout for a broker round trip."""
        return max(0.2, min(2.0, self.takeover * 0.3))


@dataclass(frozen=True)
class Refresh:
    """Outcome of one lease check."""

    leader: bool
    term: int | None = None
    """Redis: the fencing counter of this leadership; AMQP: None."""
    holder: str | None = None
    """Who holds the lease, when the broker can tell (Redis)."""
    schedule: str | None = None
    """The schedule digest of another cron claiming this lease, when one was seen: the holder's
    (Redis, as a standby) or a newcomer's (AMQP, as the leader)."""


class Coordinator(Protocol):
    """A leader lease with per-entry slot records on one broker."""

    def refresh(self) -> Refresh:
        """Acquire, renew or confirm the lease; raises BrokerUnavailable."""
        ...

    def last_slot(self, entry: str) -> float | None:
        """The last slot recorded for ``entry`` (leader only); raises BrokerUnavailable."""
        ...

    def claim(self, entry: str, slot: float, keep: float = ...) -> bool:
        """Record ``slot`` for ``entry`` if still leader and later than the record; the broker
        keeps the record at least ``keep`` seconds where records expire (Redis)."""
        ...

    def wait(self, seconds: float) -> None:
        """Standby: wait up to ``seconds``, returning early when the lease is handed over."""
        ...

    def release(self) -> None:
        """Give the lease up at once (warm stop) and close the connection."""
        ...


def owner_id() -> str:
    """This process as a lease holder: host, pid and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
