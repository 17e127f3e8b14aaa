"""The lease implementation for a broker: Redis keys or RabbitMQ queues.

Kept apart from ``lease`` (the interface both implement) so that neither implementation is
imported by a module it imports: no import cycle, lazy or not, between the lease modules.
"""

from __future__ import annotations

from console.broker.urls import BrokerURL
from console.cron.lease import Coordinator, LeaseTiming


def make_coordinator(
    url: BrokerURL, name: str, timing: LeaseTiming, schedule: str = ""
) -> Coordinator:
    """The coordinator for the broker ``url``; ``name`` separates apps sharing a broker.

    ``schedule`` (a digest of this cron's entries) travels with the claim, so crons with
    different schedules that claim one lease can tell.
    """
    if url.kind == "redis":  # imported here: a cron needs one client library, not both
        from console.cron.redis_lease import RedisCoordinator

        return RedisCoordinator(url, name, timing, schedule)
    from console.cron.amqp_lease import AMQPCoordinator

    return AMQPCoordinator(url, name, timing, schedule)
