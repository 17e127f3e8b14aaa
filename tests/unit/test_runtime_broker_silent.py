"""A broker that goes silent between the health check and the depth poll is down in that refresh."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from celery import Celery

from console.broker.errors import BrokerUnavailable
from console.broker.health import BrokerHealth
from console.runtime import ConsoleRuntime
from console.settings import Settings
from tests.supervision_support.fakes import make_supervisor

URL = "redis://127.0.0.1:6379/15"  # never contacted: the probes are replaced


class FailingDepth:
    """A depth probe whose every poll fails the way the real one does."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        self.closed = False

    def poll(self, names: Sequence[str]) -> dict[str, object]:
        raise BrokerUnavailable(f"Redis is unavailable: {self.reason}", self.reason)

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[ConsoleRuntime]:
    """A runtime whose health check always finds the broker answering."""
    settings = Settings(
        broker=None, broker_source="test", state_dir=tmp_path, cron=False
    ).with_broker(URL, "test")
    sup, _clock, _spawner = make_supervisor()
    rt = ConsoleRuntime(settings, Celery("silent", broker=URL), sup)
    answered = BrokerHealth("connected", None, 0.2, "7.0", 0, 1.0)

    def check() -> BrokerHealth:
        rt.health.last = answered
        return answered

    rt.health.check = check  # type: ignore[method-assign]
    yield rt
    sup.shutdown(timeout=1)


def test_silent_after_the_health_check_is_down_in_the_same_refresh(
    runtime: ConsoleRuntime,
) -> None:
    capacity_polls: list[Sequence[str]] = []
    runtime.capacity.poll = capacity_polls.append  # type: ignore[assignment, method-assign]
    depth = FailingDepth("timed out")
    runtime._depth = depth  # type: ignore[assignment]
    data = runtime.poll()
    assert (data.broker.state, data.broker.reason) == ("down", "timed out")
    assert runtime.health.last.state == "down"
    assert capacity_polls == []  # no second timeout in this refresh
    assert depth.closed and data.queues == ()


def test_a_refused_command_is_not_the_broker_down(runtime: ConsoleRuntime) -> None:
    capacity_polls: list[Sequence[str]] = []
    runtime.capacity.poll = capacity_polls.append  # type: ignore[assignment, method-assign]
    runtime._depth = FailingDepth("unexpected error (ResponseError)")  # type: ignore[assignment]
    data = runtime.poll()
    assert data.broker.state == "connected"
    assert len(capacity_polls) == 1
