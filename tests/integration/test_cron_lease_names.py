"""Which crons share a lease: the same app's, never two unrelated apps' left at the defaults; and
a warning when crons with different schedules claim one lease (an explicit CONSOLE_CRON_NAME)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from celery import Celery

from console.cron import role as roles
from console.cron.scheduler import CoordinatedScheduler
from tests.waiting import wait_until

Make = Callable[..., CoordinatedScheduler]


@pytest.fixture(params=["redis", pytest.param("rabbitmq", marks=pytest.mark.rabbitmq)])
def broker_url(request: pytest.FixtureRequest) -> str:
    """The test's private Redis database or RabbitMQ vhost."""
    return str(request.getfixturevalue("redis_url" if request.param == "redis" else "rabbitmq_url"))


@pytest.fixture
def make(broker_url: str, unique: str) -> Iterator[Make]:
    """Builds coordinated schedulers for apps left at Celery's defaults; closes them at the end."""
    made: list[CoordinatedScheduler] = []

    def build(schedule: dict[str, Any], **conf: Any) -> CoordinatedScheduler:
        app = Celery(set_as_current=False)  # main None, default queue "celery": the defaults
        app.conf.update(
            broker_url=broker_url,
            beat_schedule=schedule,
            console_cron_takeover=1.0,
            timezone="UTC",
            **conf,
        )
        scheduler = CoordinatedScheduler(app=app)
        made.append(scheduler)
        return scheduler

    yield build
    for scheduler in made:
        scheduler.close()


def entry(task: str) -> dict[str, Any]:
    """One interval entry."""
    return {"task": task, "schedule": 60.0}


def settle(schedulers: list[CoordinatedScheduler]) -> list[str]:
    """Tick every scheduler until each knows its role (leader or standby); their roles."""

    def roles_known() -> list[str] | None:
        for scheduler in schedulers:
            scheduler.tick()
        seen = [s.role for s in schedulers]
        return seen if all(r in (roles.LEADER, roles.STANDBY) for r in seen) else None

    return wait_until("every cron's role", roles_known, timeout=15, step=0.05)


def test_two_default_apps_with_different_schedules_both_lead(make: Make) -> None:
    billing = make({"invoice": entry("billing.invoice")})
    mailer = make({"digest": entry("mailer.digest")})
    settle([billing, mailer])
    # Each must lead its own lease, or the other's entries are never sent.
    assert wait_until(
        "both crons leading",
        lambda: settle([billing, mailer]) == [roles.LEADER, roles.LEADER],
        timeout=10,
        seen=lambda: (billing.role, mailer.role),
    )
    assert billing.lease != mailer.lease


def test_crons_of_one_app_share_one_lease(make: Make) -> None:
    schedule = {"invoice": entry("billing.invoice")}
    first, second = make(schedule), make(schedule)
    assert first.lease == second.lease
    assert sorted(settle([first, second])) == [roles.LEADER, roles.STANDBY]


def test_different_schedules_on_one_named_lease_are_warned_about(
    make: Make, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="console.cron"):
        first = make({"invoice": entry("billing.invoice")}, console_cron_name="shared")
        settle([first])
        second = make({"digest": entry("mailer.digest")}, console_cron_name="shared")
        assert first.lease == second.lease == "shared"

        def warned() -> bool:
            settle([first, second])
            return any("different schedules" in r.getMessage() for r in caplog.records)

        wait_until("a warning about the shared lease", warned, timeout=10, seen=lambda: caplog.text)
    message = next(
        r.getMessage() for r in caplog.records if "different schedules" in r.getMessage()
    )
    assert "shared" in message and first.digest in message and second.digest in message
    assert "CONSOLE_CRON_NAME" in message
