"""RabbitMQ capacity for real: a memory alarm seen within 1 s, and the management API."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import amqp
import pytest

from console.broker.capacity import BrokerMemory
from console.broker.capacity_monitor import CapacityMonitor
from console.broker.rabbit_alarm import BlockedWatcher
from console.broker.rabbit_api import RabbitManagementAPI
from console.broker.urls import parse_broker_url
from tests.conftest import unavailable
from tests.waiting import until, wait_until

SHOWN_WITHIN = 1.0


def rabbitmqctl(*args: str) -> str:
    """Run rabbitmqctl quietly and return its output."""
    done = subprocess.run(
        ["rabbitmqctl", "-q", *args], check=True, capture_output=True, text=True, timeout=60
    )
    return done.stdout.strip()


def watermark_args() -> list[str]:
    """The arguments that set the memory watermark back to what it is now."""
    now = rabbitmqctl("eval", "vm_memory_monitor:get_vm_memory_high_watermark().")
    if re.fullmatch(r"[0-9.]+", now):
        return [now]
    absolute = re.fullmatch(r"\{absolute,\s*([0-9]+)\}", now)
    if absolute:
        return ["absolute", absolute.group(1)]
    unavailable(f"cannot restore a memory watermark of {now!r}")


class MemoryAlarm:
    """Raises a RabbitMQ memory alarm by lowering the watermark, and puts the watermark back."""

    def __init__(self) -> None:
        self.previous = watermark_args()
        self.raised = False

    def raise_(self) -> float:
        """Lower the watermark below any use; return the monotonic time rabbitmqctl returned."""
        self.raised = True
        rabbitmqctl("set_vm_memory_high_watermark", "0.0000001")
        return time.monotonic()

    def clear(self) -> float:
        """Restore the watermark; return the monotonic time rabbitmqctl returned."""
        if self.raised:
            rabbitmqctl("set_vm_memory_high_watermark", *self.previous)
            self.raised = False
        return time.monotonic()


def api_limit_restored() -> bool:
    """True once the management API (when it runs) reports every node's memory limit above its
    use again: its figures lag the watermark by a few seconds, and the next test reads them."""
    request = urllib.request.Request("http://127.0.0.1:15672/api/nodes")
    token = base64.b64encode(b"guest:guest").decode()
    request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=2) as answer:
            nodes = json.load(answer)
    except (OSError, ValueError):
        return True  # no management API: nothing lags
    return bool(nodes) and all(n.get("mem_limit", 0) > n.get("mem_used", 0) for n in nodes)


@pytest.fixture
def memory_alarm(rabbitmq_vhost: str) -> Iterator[MemoryAlarm]:
    """A memory alarm the test raises and clears; the watermark is restored even on failure,
    and the fixture ends only once the management API says so too."""
    alarm = MemoryAlarm()
    try:
        yield alarm
    finally:
        alarm.clear()
        wait_until("the management API's memory limit restored", api_limit_restored, 30)


def test_memory_alarm_is_seen_within_a_second_and_clears(
    rabbitmq_url: str, memory_alarm: MemoryAlarm
) -> None:
    changes: list[float] = []
    url = parse_broker_url(rabbitmq_url)
    monitor = CapacityMonitor(url, timeout=1.0, api="http://127.0.0.1:1")
    assert monitor.watcher is not None
    monitor.watcher.on_change = lambda: changes.append(time.monotonic())
    monitor.start()
    try:
        wait_until(
            "the alarm watcher's first canary",
            lambda: monitor.watcher and monitor.watcher.canaries > 0,
            10,
        )
        assert monitor.poll(["celery"]).blocked is None  # type: ignore[union-attr]
        raised_at = memory_alarm.raise_()
        wait_until("connection.blocked", lambda: monitor.watcher and monitor.watcher.blocked, 5)
        assert changes and changes[-1] - raised_at < SHOWN_WITHIN, changes[-1] - raised_at
        cap = monitor.poll(["celery"])
        assert cap is not None and cap.blocked
        assert cap.warnings[0].code == "publishers-blocked"
        assert cap.warnings[0].level == "alarm"
        cleared_at = memory_alarm.clear()
        wait_until(
            "connection.unblocked", lambda: monitor.watcher and monitor.watcher.blocked is None, 5
        )
        assert changes[-1] - cleared_at < SHOWN_WITHIN, changes[-1] - cleared_at
        cap = monitor.poll(["celery"])
        assert cap is not None and cap.blocked is None
        assert "publishers-blocked" not in {w.code for w in cap.warnings}
    finally:
        monitor.close()


def test_a_dropped_connection_clears_the_blocked_flag(
    rabbitmq_url: str, rabbitmq_vhost: str, memory_alarm: MemoryAlarm
) -> None:
    watcher = BlockedWatcher(parse_broker_url(rabbitmq_url), timeout=1.0)
    changes: list[tuple[str | None, str | None]] = []
    watcher.on_change = lambda: changes.append((watcher.blocked, watcher.error))
    watcher.start()
    try:
        wait_until("the watcher's first canary", lambda: watcher.canaries > 0, 10)
        memory_alarm.raise_()
        wait_until("connection.blocked", lambda: watcher.blocked, 5)
        changes.clear()
        rabbitmqctl("close_all_connections", "-p", rabbitmq_vhost, "test: connection dropped")
        first = wait_until("the flag's next change", lambda: changes and changes[0], 10)
        # Cleared as the connection dropped, with the reason, not only after a reconnect.
        assert first[0] is None, "a stale alarm stays while the watcher reconnects"
        assert first[1], "the dropped connection is not reported"
    finally:
        watcher.stop()


def test_watcher_reports_a_refused_connection(unique: str) -> None:
    watcher = BlockedWatcher(parse_broker_url("amqp://guest:guest@127.0.0.1:1//"), timeout=0.5)
    watcher.start()
    try:
        wait_until("the connection error", lambda: watcher.error, 5)
        assert "refused" in (watcher.error or "")
        assert watcher.blocked is None
        monitor = CapacityMonitor(watcher.url, api="http://127.0.0.1:1", timeout=0.5)
        monitor.watcher = watcher
        notes = monitor.poll(["celery"]).notes  # type: ignore[union-attr]
        assert any("alarm watcher not connected" in n for n in notes), notes
        assert any("management API" in n for n in notes), notes
    finally:
        watcher.stop()


def management_api_up() -> bool:
    api = RabbitManagementAPI(parse_broker_url("amqp://guest:guest@127.0.0.1:5672//"))
    api.refresh()
    return api.error is None


def test_management_api_per_queue_and_node(rabbitmq_url: str, unique: str) -> None:
    if not management_api_up():
        unavailable("the RabbitMQ management API is not enabled on 127.0.0.1:15672")
    url = parse_broker_url(rabbitmq_url)
    name = f"cap-{unique}"
    conn = amqp.Connection(host="127.0.0.1:5672", virtual_host=url.vhost, heartbeat=0)
    conn.connect()
    try:
        channel = conn.channel()
        channel.queue_declare(name, durable=False, auto_delete=False)
        for _ in range(5):
            body = amqp.Message(b"x" * 100, timestamp=int(time.time()) - 30)
            channel.basic_publish(body, exchange="", routing_key=name)
        api = RabbitManagementAPI(url, timeout=2.0)
        deadline = time.monotonic() + 20  # the API's queue stats lag a few seconds
        row = None
        while time.monotonic() < deadline:
            api.refresh()
            row = api.capacity([name]).queue(name)
            if row is not None and row.bytes == 500:
                break
            time.sleep(0.5)
        assert api.error is None
        assert row is not None and row.bytes == 500 and row.unacked == 0
        assert row.oldest_age is not None and 25 <= row.oldest_age < 120

        # The node's figures lag too: right after the alarm test restores the watermark the API
        # can still report the tiny limit for a few samples. Each refresh alternates between
        # the queues and the nodes.
        def node_memory() -> BrokerMemory | None:
            api.refresh()
            memory = api.capacity([name]).memory
            if memory and memory.used and memory.limit and memory.used < memory.limit:
                return memory
            return None

        memory = wait_until("the node's memory under its limit", node_memory, 30, step=0.5)
        assert memory.limit_source == "watermark"
        requests = api.requests
        api.refresh()
        assert api.requests == requests + 1
    finally:
        conn.close()


def test_management_api_unreachable_is_said_once(rabbitmq_url: str) -> None:
    url = parse_broker_url(rabbitmq_url)
    api = RabbitManagementAPI(url, "http://guest:secret@127.0.0.1:1", timeout=0.5)
    api.refresh()
    cap = api.capacity(["celery"])
    assert len(cap.notes) == 1 and "not reachable" in cap.notes[0]
    assert "secret" not in cap.notes[0]
    asked = api.requests
    api.refresh()
    assert api.requests == asked, "an unreachable API is not asked again every poll"


async def test_screen_shows_the_alarm_within_a_second_and_clears_it(
    rabbitmq_url: str, unique: str, state_dir: Path, memory_alarm: MemoryAlarm
) -> None:
    from console.runtime import ConsoleRuntime
    from console.settings import Settings
    from console.ui.app import ConsoleApp
    from console.ui.capacity import CapacityWarnings
    from console.ui.statusbar import StatusBar
    from tests.cluster_support.app import make_app

    settings = Settings(
        broker=None, broker_source="test", state_dir=state_dir, worker_groups=(), cron=False
    ).with_broker(rabbitmq_url, "test")
    runtime = ConsoleRuntime(settings, make_app(rabbitmq_url, unique))
    runtime.start()
    console = ConsoleApp(runtime, live=True)

    def shown() -> bool:
        bar = str(console.query_one(StatusBar).render())
        return "PUBLISHERS BLOCKED" in bar and console.query_one(CapacityWarnings).display

    async def seconds_until(condition: Callable[[], object], since: float) -> float:
        await until(pilot, condition, "the status bar to follow the alarm", 10, step=0.01)
        return time.monotonic() - since

    try:
        async with console.run_test(size=(100, 30)) as pilot:
            watcher = runtime.capacity.watcher
            assert watcher is not None
            await seconds_until(
                lambda: watcher.canaries > 0 and console.last_data is not None, time.monotonic()
            )
            took = await seconds_until(shown, memory_alarm.raise_())
            assert took < SHOWN_WITHIN, f"alarm shown after {took:.2f} s"
            took = await seconds_until(lambda: not shown(), memory_alarm.clear())
            assert took < SHOWN_WITHIN, f"alarm cleared after {took:.2f} s"
    finally:
        runtime.shutdown()
