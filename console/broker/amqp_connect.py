"""One way to open a py-amqp connection from a parsed broker URL, for every AMQP probe."""

from __future__ import annotations

from typing import Any

import amqp

from console.broker.urls import BrokerURL


def amqp_connection(
    url: BrokerURL, timeout: float, *, heartbeat: float = 0, **options: Any
) -> amqp.Connection:
    """An unconnected ``amqp.Connection`` to ``url`` with every timeout set to ``timeout``."""
    host = f"[{url.host}]:{url.port}" if ":" in (url.host or "") else f"{url.host}:{url.port}"
    return amqp.Connection(
        host=host,
        userid=url.username or "guest",
        password=url.password or "",
        virtual_host=url.vhost or "/",
        ssl=url.tls,
        connect_timeout=timeout,
        read_timeout=timeout,
        write_timeout=timeout,
        heartbeat=heartbeat,
        **options,
    )
