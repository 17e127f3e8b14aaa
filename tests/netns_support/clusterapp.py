"""The Sentry-style pipeline of ``workers.app`` plus a tick every second that no worker consumes.

The consoles of the test cluster run this app: their workers store events as ``workers.app``
does, and their crons send ``netns.tick`` each second to ``NETNS_TICK_QUEUE``, a queue outside
the app's ``task_queues`` (so no worker consumes it) where the test counts the slots sent.
"""

from __future__ import annotations

import os
import time

from workers.app import make_app

TICK_TASK = "netns.tick"
SLEEP_TASK = "netns.sleep"
TICK_QUEUE = os.environ.get("NETNS_TICK_QUEUE", "netns-ticks")

app = make_app(os.environ, main="workers")
app.conf.beat_schedule = {
    **app.conf.beat_schedule,
    "netns-tick": {"task": TICK_TASK, "schedule": 1.0, "options": {"queue": TICK_QUEUE}},
}


@app.task(name=TICK_TASK)
def tick() -> None:
    """Never runs: the test takes the messages off the queue and reads their headers."""


@app.task(name=SLEEP_TASK)
def sleep(seconds: float) -> float:
    """Run for ``seconds``: a task to revoke while it runs on some host."""
    time.sleep(seconds)
    return seconds
