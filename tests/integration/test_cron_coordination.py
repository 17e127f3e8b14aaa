"""Three crons on one broker (Redis, RabbitMQ): one sender, each slot sent once, through
SIGKILL, SIGSTOP/SIGCONT of the sender and a broker outage."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from console.cron.role import NO_BROKER
from tests.cron_support.cluster import CronCluster, check_sends, dump
from tests.cron_support.forwarder import CutForwarder
from tests.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

#: The default takeover target, plus slack for a loaded shared machine (nominal worst case 4 s).
TAKEOVER_LIMIT = 6.0
#: After a takeover or an outage, how long a catch-up send may still arrive.
SETTLE = 3.0


@pytest.fixture(params=["redis", pytest.param("rabbitmq", marks=pytest.mark.rabbitmq)])
def broker_url(request: pytest.FixtureRequest) -> str:
    """The test's private Redis database or RabbitMQ vhost."""
    name = "redis_url" if request.param == "redis" else "rabbitmq_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
def cluster(broker_url: str, tmp_path: Path, unique: str) -> Iterator[CronCluster]:
    """An empty cron cluster whose processes are all stopped at the end, even on failure."""
    made = CronCluster(broker_url, f"cron-ticks-{unique}", tmp_path)
    try:
        yield made
    finally:
        made.stop_all()


def run_for(seconds: float) -> None:
    """Let the scenario run (the crons keep sending meanwhile)."""
    time.sleep(seconds)


def test_sender_killed_twice_and_frozen(cluster: CronCluster, tmp_path: Path) -> None:
    """SIGKILL the sender twice and SIGSTOP it for 10 s: each slot is sent once, in order."""
    cluster.declare()
    for name in ("host-a", "host-b", "host-c"):
        cluster.add(name)
    leader = cluster.wait_for_leader(timeout=60)
    run_for(8)
    windows: list[tuple[float, float]] = []
    takeovers = []
    for _ in range(2):
        killed_at = time.time()
        cluster.signal(leader, signal.SIGKILL)
        new = cluster.wait_for_leader(exclude=leader, timeout=30)
        since = new.role_since()
        assert since is not None
        takeovers.append(round(since - killed_at, 2))
        windows.append((killed_at, since + SETTLE))
        cluster.start(leader)  # the killed host's supervisor starts it again
        leader = new
        run_for(8)
    frozen_at = time.time()
    cluster.signal(leader, signal.SIGSTOP)
    new = cluster.wait_for_leader(exclude=leader, timeout=30)
    since = new.role_since()
    assert since is not None
    freeze_takeover = round(since - frozen_at, 2)
    windows.append((frozen_at, since + SETTLE))
    run_for(max(0.0, frozen_at + 10 - time.time()))
    cluster.signal(leader, signal.SIGCONT)
    woken = leader
    wait_until("the woken cron to step down", lambda: woken.role() not in (None, "leader"), 20)
    run_for(8)
    assert [c.name for c in cluster.leaders()] == [new.name], cluster.roles()
    cluster.stop_all()

    figures = check_sends(cluster.sent(), windows)
    figures.update(kill_takeovers=takeovers, freeze_takeover=freeze_takeover)
    dump(tmp_path / "figures.json", figures)
    print("cron coordination:", figures)
    assert max(takeovers) <= TAKEOVER_LIMIT, (takeovers, cluster.logs())
    assert figures["slots"] >= 40, figures


def _forwarded(url: str, port: int) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) > 1 else host))


def test_broker_outage_sends_no_slot_twice(broker_url: str, tmp_path: Path, unique: str) -> None:
    """Cut the crons off the broker for 10 s: after it returns, no slot is sent twice."""
    parts = urlsplit(broker_url)
    forwarder = CutForwarder((parts.hostname or "127.0.0.1", parts.port or 0))
    forwarder.start()
    cluster = CronCluster(_forwarded(broker_url, forwarder.port), f"cron-ticks-{unique}", tmp_path)
    try:
        cluster.declare(broker_url)
        for name in ("host-a", "host-b", "host-c"):
            cluster.add(name)
        cluster.wait_for_leader(timeout=60)
        run_for(6)
        cut_at = time.time()
        forwarder.cut()
        wait_until(
            "every cron to see it", lambda: all(c.role() == NO_BROKER for c in cluster.crons), 20
        )
        run_for(max(0.0, cut_at + 10 - time.time()))
        forwarder.start()
        back = cluster.wait_for_leader(timeout=30)
        since = back.role_since()
        assert since is not None
        run_for(6)
        cluster.stop_all()
        figures = check_sends(cluster.sent(broker_url), [(cut_at - 1, since + SETTLE)])
        figures["back_after_return"] = round(since - cut_at - 10, 2)
        print("cron outage:", figures)
        assert figures["catch_ups"], "the slots that fell due in the outage were never sent"
    finally:
        cluster.stop_all()
        forwarder.close()
