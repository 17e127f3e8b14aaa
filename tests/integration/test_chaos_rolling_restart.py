"""A rolling restart of two Celery workers under load: no event lost, no queue left unconsumed."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from console.actions import ActionResult
from console.appref import app_queue_names
from console.eventgen import send_events
from console.handover import expand_node
from console.programs import alternate_node_name
from console.runtime import ConsoleRuntime
from console.settings import WorkerGroup
from console.supervision import ProcessState
from tests.chaos_support.helpers import store_count, supervised_workers
from tests.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

EVENTS = 1500
#: How long one sample may wait for the workers' replies on a busy two-core machine.
REPLY_TIMEOUT = 2.0


@pytest.fixture
def runtime(
    redis_url: str, state_dir: Path, unique: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ConsoleRuntime]:
    """A console runtime with two Celery workers on the test's Redis db, no cron."""
    group = WorkerGroup(processes=2, concurrency=1, hostname=f"r{unique}-{{n}}@%h")
    with supervised_workers(
        redis_url, state_dir, unique, group, monkeypatch, SENTRY_VISIBILITY_TIMEOUT="10"
    ) as rt:
        yield rt


def consumed_queues(rt: ConsoleRuntime, nodes: list[str]) -> dict[str, set[str]]:
    """Which queues each answering worker consumes right now."""
    live = sum(1 for s in rt.supervisor.snapshot() if s.pid is not None)
    inspect = rt.app.control.inspect(destination=nodes, timeout=REPLY_TIMEOUT, limit=live)
    replies = inspect.active_queues() or {}
    return {node: {q["name"] for q in queues} for node, queues in replies.items()}


def test_rolling_restart_under_load_keeps_a_consumer_on_every_queue(
    runtime: ConsoleRuntime,
) -> None:
    store = runtime.settings.state_dir / "events.sqlite3"
    group = runtime.group()
    # A replacement answers on the slot's other node name while the old one finishes.
    names = [group.node_name(n) for n in (1, 2)]
    nodes = [expand_node(v) for node in names for v in (node, alternate_node_name(node))]
    queues = set(app_queue_names(runtime.app))
    began = time.monotonic()
    assert runtime.supervisor.wait_for(
        lambda s: all(p.state is ProcessState.RUNNING for p in s), 60
    )
    wait_until("both workers consuming", lambda: len(consumed_queues(runtime, nodes)) == 2, 60)
    pids_before = {s.name: s.pid for s in runtime.supervisor.snapshot()}

    sender = threading.Thread(
        target=send_events, args=(runtime.app, "workers.process_event", EVENTS), daemon=True
    )
    sender.start()
    wait_until("events flowing", lambda: store_count(store) >= 50, 60)

    outcome: list[ActionResult] = []
    restarter = threading.Thread(target=lambda: outcome.append(runtime.rolling_restart()))
    restarter.start()
    samples: list[tuple[float, dict[str, set[str]]]] = []
    try:
        while restarter.is_alive():
            taken = time.monotonic()
            samples.append((taken - began, consumed_queues(runtime, nodes)))
            time.sleep(max(0.0, 0.2 - (time.monotonic() - taken)))
    finally:
        restarter.join(180)
        sender.join(120)
    restarted_at = time.monotonic() - began
    assert outcome == [ActionResult.done("worker: rolling restart done")]
    snaps = {s.name: s for s in runtime.supervisor.snapshot()}
    for name, pid in pids_before.items():
        assert snaps[name].pid != pid and snaps[name].restarts == 1
    uncovered = [
        (at, sample) for at, sample in samples if not queues <= set().union(*sample.values())
    ]
    assert not uncovered, f"queues without a consumer at {uncovered}"
    overlapping = sum(1 for _, sample in samples if len(sample) > 2)
    assert len(samples) >= 10 and overlapping >= 2, samples  # the restart was sampled
    wait_until(f"{EVENTS} rows", lambda: store_count(store) >= EVENTS, 180, step=0.5)
    assert store_count(store) == EVENTS
    print(
        f"{len(samples)} samples, {overlapping} with a replacement beside its worker; done at "
        f"{restarted_at:.1f}s, {EVENTS} rows at {time.monotonic() - began:.1f}s"
    )
