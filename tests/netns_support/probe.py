"""Broker chores the test runs on a cluster host (the test's own namespace cannot reach it).

``python -m tests.netns_support.probe declare QUEUE``: declare the tick queue.
``python -m tests.netns_support.probe ticks QUEUE``: take every tick message off the queue and
print their cron headers as a JSON list ``[{"slot", "after", "sender"}]``, in slot order.
``python -m tests.netns_support.probe pool NODE``: the pool size ``inspect stats`` reports.
``python -m tests.netns_support.probe sleep SECONDS``: queue a sleeping task; print its id.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from kombu import Connection, Exchange, Queue

from console.cron.scheduler import AFTER_HEADER, SENDER_HEADER, SLOT_HEADER


def tick_queue(name: str) -> Queue:
    """The tick queue as the cron's publish declares it (a direct exchange of the same name)."""
    return Queue(name, Exchange(name, type="direct"), routing_key=name)


def declare(url: str, name: str) -> None:
    """Create the queue and its binding, so no tick is dropped before the first send."""
    with Connection(url) as conn:
        tick_queue(name)(conn.default_channel).declare()


def take_ticks(url: str, name: str) -> list[dict[str, Any]]:
    """Consume every message in the queue; their slot, previous slot and sender."""
    found: list[dict[str, Any]] = []
    with Connection(url) as conn, conn.SimpleQueue(tick_queue(name)) as queue:
        while True:
            try:
                message = queue.get_nowait()
            except queue.Empty:
                break
            headers = message.headers
            found.append(
                {
                    "slot": float(headers[SLOT_HEADER]),
                    "after": float(headers[AFTER_HEADER]),
                    "sender": str(headers[SENDER_HEADER]),
                }
            )
            message.ack()
    return sorted(found, key=lambda t: t["slot"])


def pool_size(node: str) -> int | None:
    """How many processes ``node``'s pool has, from its own ``inspect stats`` reply."""
    from console.cluster import RemoteControl
    from tests.netns_support.clusterapp import app

    control = RemoteControl(app, timeout=3.0)
    try:
        return control.pool_size(node)
    finally:
        control.close()


def queue_sleep(seconds: float) -> str:
    """Queue ``netns.sleep`` on the default queue (any host's worker may take it); its id."""
    from tests.netns_support.clusterapp import SLEEP_TASK, app

    return str(app.send_task(SLEEP_TASK, args=(seconds,), queue="default").id)


def main(argv: list[str]) -> int:
    """Run one chore against ``SENTRY_BROKER_URL``."""
    url = os.environ["SENTRY_BROKER_URL"]
    command, name = argv
    if command == "declare":
        declare(url, name)
    elif command == "ticks":
        print(json.dumps(take_ticks(url, name)))
    elif command == "pool":
        print(json.dumps(pool_size(name)))
    elif command == "sleep":
        print(queue_sleep(float(name)))
    else:
        print(f"unknown command {command!r}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
