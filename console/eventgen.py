"""Synthetic Sentry-style error events, sent the way a web request would enqueue them."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from typing import Any

from celery import Celery

_LEVELS = ("error", "error", "error", "warning", "fatal", "info")
_ERRORS = (
    ("ValueError", "invalid literal for int() with base 10: 'abc'"),
    ("KeyError", "'user_id'"),
    ("TimeoutError", "upstream did not answer within 30s"),
    ("ZeroDivisionError", "division by zero"),
    ("ConnectionResetError", "[Errno 104] Connection reset by peer"),
)
_PLATFORMS = ("python", "javascript", "java", "go")


def make_event(rng: random.Random, now: float) -> dict[str, Any]:
    """One raw error event as a client SDK would post it."""
    exc_type, exc_value = rng.choice(_ERRORS)
    return {
        "event_id": uuid.UUID(int=rng.getrandbits(128)).hex,
        "project": rng.choice(("web", "api", "billing")),
        "level": rng.choice(_LEVELS),
        "message": f"{exc_type}: {exc_value}",
        "platform": rng.choice(_PLATFORMS),
        "timestamp": now,
        "tags": {"release": f"1.{rng.randint(0, 9)}", "env": "production"},
        "exception": {"type": exc_type, "value": exc_value},
    }


def send_events(
    app: Celery,
    task_name: str,
    count: int,
    *,
    rate: float | None = None,
    seed: int | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> float:
    """Enqueue ``count`` events to ``task_name`` (at most ``rate``/s); return the seconds taken."""
    rng = random.Random(seed if seed is not None else uuid.uuid4().int)
    started = clock()
    with app.producer_or_acquire() as producer:
        for i in range(count):
            if rate:
                due = started + i / rate
                delay = due - clock()
                if delay > 0:
                    sleep(delay)
            app.send_task(task_name, args=[make_event(rng, time.time())], producer=producer)
    return clock() - started
