"""Leave a Redis broker as a one-shot read found it.

A ping with replies binds a reply queue that expires, and kombu's Redis transport notes the
binding table's deadline in ``_kombu.binding_deadlines`` (a sorted set of exchange names). The
queue and its table go when the ping ends; the deadline entry stays until a consumer sweeps it.
A long-running console keeps that entry fresh anyway; a headless read (``status``) takes out
the entry it added, when nobody else's reply queue is bound to the exchange meanwhile.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from celery import Celery

DEADLINES = "_kombu.binding_deadlines"


def _redis_client(conn: Any) -> tuple[Any, str] | None:
    """The transport's Redis client (it applies any global key prefix), or None elsewhere."""
    if conn.transport.driver_type != "redis":
        return None
    channel = conn.default_channel
    return channel.client, channel.keyprefix_queue


@contextlib.contextmanager
def leave_as_found(app: Celery) -> Iterator[None]:
    """Around remote-control calls with replies: remove the binding deadline they leave behind."""
    exchange = app.control.mailbox.reply_exchange.name
    try:
        conn = app.connection_for_read()
        found = _redis_client(conn)
    except Exception:
        found = None
    if found is None:
        yield
        return
    client, table_key = found
    try:
        had = client.zscore(DEADLINES, exchange) is not None
    except Exception:
        had = True  # unknown: touch nothing
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            if not had and not client.exists(table_key % exchange):
                client.zrem(DEADLINES, exchange)  # the last member gone, Redis drops the key
        with contextlib.suppress(Exception):
            conn.release()
