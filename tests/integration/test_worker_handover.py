"""`r` on a worker group of one: the replacement consumes before the old worker stops, so the
queues never lack a consumer (RabbitMQ counts consumers; sampled every 100 ms under load)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from kombu import Connection

from console.appref import app_queue_names
from console.eventgen import send_events
from console.handover import expand_node
from console.programs import alternate_node_name
from console.runtime import ConsoleRuntime
from console.settings import WorkerGroup
from console.supervision import ProcessState
from tests.chaos_support.helpers import store_count, supervised_workers
from tests.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.rabbitmq, pytest.mark.timeout(300)]

EVENTS = 1000


@pytest.fixture
def runtime(
    rabbitmq_url: str, state_dir: Path, unique: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ConsoleRuntime]:
    """A console runtime with one Celery worker on the session's RabbitMQ vhost."""
    group = WorkerGroup(processes=1, concurrency=2, hostname=f"h{unique}-{{n}}@%h")
    with supervised_workers(rabbitmq_url, state_dir, unique, group, monkeypatch) as rt:
        yield rt


class ConsumerSampler:
    """Counts each queue's consumers every 100 ms in a thread; keeps the lowest seen."""

    def __init__(self, url: str, queues: list[str]) -> None:
        self.lowest = dict.fromkeys(queues, 10**6)
        self.samples = 0
        self._stop = threading.Event()
        self._url = url
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ConsumerSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        with Connection(self._url) as conn:
            channel = conn.default_channel
            while not self._stop.is_set():
                for queue in self.lowest:
                    _, _, consumers = channel.queue_declare(queue, passive=True)
                    self.lowest[queue] = min(self.lowest[queue], consumers)
                self.samples += 1
                self._stop.wait(0.1)


def node_answers(runtime: ConsoleRuntime, node: str) -> bool:
    return bool(runtime.control.ping([node]).get(node, False))


def test_restart_of_a_lone_worker_leaves_no_consumer_gap(
    runtime: ConsoleRuntime, rabbitmq_url: str
) -> None:
    group = runtime.group()
    first = expand_node(group.node_name(1))
    second = expand_node(alternate_node_name(group.node_name(1)))
    assert runtime.supervisor.wait_for(
        lambda s: all(p.state is ProcessState.RUNNING for p in s), 60
    )
    wait_until("the worker answering", lambda: node_answers(runtime, first), 60)
    store = runtime.settings.state_dir / "events.sqlite3"
    queues = app_queue_names(runtime.app)
    sender = threading.Thread(
        target=send_events, args=(runtime.app, "workers.process_event", EVENTS), daemon=True
    )
    sender.start()
    wait_until("events flowing", lambda: store_count(store) >= 50, 60)
    pid_before = runtime.supervisor.snapshot()[0].pid
    with ConsumerSampler(rabbitmq_url, queues) as sampler:
        result = runtime.restart("worker-1")
        assert result.ok and "replaced" in result.message, result
        wait_until("the old worker gone", lambda: len(runtime.supervisor.snapshot()) == 1, 60)
    snap = runtime.supervisor.snapshot()[0]
    assert snap.name == "worker-1" and snap.pid != pid_before and snap.restarts == 1
    assert sampler.samples >= 10
    assert min(sampler.lowest.values()) >= 1, f"a queue lost its consumer: {sampler.lowest}"
    assert node_answers(runtime, second) and not node_answers(runtime, first)

    result = runtime.restart("worker-1")  # the next replacement takes the first name back
    assert result.ok and "replaced" in result.message, result
    assert node_answers(runtime, first)
    sender.join(120)
    wait_until(f"{EVENTS} rows", lambda: store_count(store) >= EVENTS, 180, step=0.5)
    assert store_count(store) == EVENTS
