"""Claiming an empty database of a shared Redis: how tests and benchmarks keep out of each other.

A claim is a key set with NX in an empty database; whoever set it owns the database until it
releases it (every key deleted, the claim last) or the claim expires.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import redis

CLAIM_KEY = "sentry-console:test-claim"
REDIS_HOST = os.environ.get("SC_TEST_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("SC_TEST_REDIS_PORT", "6379"))


def db_range() -> list[int]:
    """Databases that may be claimed, from SC_TEST_REDIS_DBS ("lo-hi"), default 1-15."""
    lo, _, hi = os.environ.get("SC_TEST_REDIS_DBS", "1-15").partition("-")
    return list(range(int(lo), int(hi or lo) + 1))


@dataclass
class ClaimedDb:
    """An empty Redis database claimed by ``token``, emptied on release."""

    client: redis.Redis
    db: int
    token: str
    host: str
    port: int

    @property
    def url(self) -> str:
        """The broker URL of this database."""
        return f"redis://{self.host}:{self.port}/{self.db}"

    def clear(self) -> None:
        """Delete every key but the claim."""
        for key in self.client.scan_iter(count=1000):
            if key != CLAIM_KEY.encode():
                self.client.delete(key)

    def release(self) -> None:
        """Delete everything created here, the claim last (if it is still ours)."""
        self.clear()
        if self.client.get(CLAIM_KEY) == self.token.encode():
            self.client.delete(CLAIM_KEY)
        self.client.close()


def claim_empty_db(host: str, port: int, ttl: int) -> ClaimedDb | None:
    """Claim the first empty database of ``db_range()`` for ``ttl`` seconds; None if all are busy.

    Raises redis.ConnectionError when nothing answers at ``host:port``.
    """
    token = uuid.uuid4().hex
    for db in db_range():
        client = redis.Redis(host=host, port=port, db=db)
        try:
            if client.dbsize() == 0 and client.set(CLAIM_KEY, token, nx=True, ex=ttl):
                return ClaimedDb(client, db, token, host, port)
        except BaseException:
            client.close()
            raise
        client.close()
    return None


@contextlib.contextmanager
def claimed_db(
    host: str = REDIS_HOST, port: int = REDIS_PORT, ttl: int = 3600
) -> Iterator[ClaimedDb]:
    """A claimed empty database for the duration (for scripts: SystemExit when none is free)."""
    claim = claim_empty_db(host, port, ttl)
    if claim is None:
        raise SystemExit("no free Redis database to claim")
    try:
        yield claim
    finally:
        claim.release()
