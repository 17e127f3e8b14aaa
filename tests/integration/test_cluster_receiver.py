"""The event receiver survives an unreachable broker and reads the lean Redis stream."""

from __future__ import annotations

import socket
import time

import pytest
import redis

from console.cluster import ClusterMonitor
from console.cluster.receiver import EventReceiverThread
from console.cluster.state import ClusterState
from tests.cluster_support.app import make_app
from tests.waiting import wait_until


def free_port() -> int:
    """A local TCP port with nothing listening on it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("scheme", ["redis", "amqp"])
def test_unreachable_broker_is_down_with_a_reason_and_stop_is_bounded(
    scheme: str, unique: str
) -> None:
    app = make_app(f"{scheme}://127.0.0.1:{free_port()}/0", unique)
    monitor = ClusterMonitor(app, poll_interval=0.5, inspect_timeout=0.2)
    monitor.start()
    try:
        wait_until(
            "the receiver down with a reason",
            lambda: monitor.receiver_state.startswith("down: "),
            10,
        )
        assert monitor.receiver.alive
        wait_until("a failed poll", lambda: monitor.polls >= 1 and monitor.poll_error, 10)
        assert monitor.snapshot().workers == []
    finally:
        began = time.monotonic()
        monitor.stop(timeout=5)
    assert time.monotonic() - began < 7
    assert not monitor.receiver.alive


def test_receiver_reconnects_after_its_connection_is_killed(redis_url: str, unique: str) -> None:
    app = make_app(redis_url, unique)
    state = ClusterState()
    receiver = EventReceiverThread(app, state)
    receiver.start()
    try:
        wait_until("the receiver to listen", lambda: receiver.status == "listening", 10)
        with app.connection_for_write() as conn:
            dispatcher = app.events.Dispatcher(conn, hostname=f"w-{unique}@h")
            dispatcher.send("worker-heartbeat")
            wait_until("the first heartbeat", lambda: state.events_received == 1, 5)
            client = redis.Redis.from_url(redis_url)
            db = str(client.connection_pool.connection_kwargs.get("db", 0))
            for info in client.client_list():  # only this test's db: others share the server
                if str(info.get("db")) == db and int(info.get("psub", 0)) > 0:
                    client.client_kill_filter(_id=info["id"])
            wait_until("the receiver down", lambda: receiver.status.startswith("down"), 5)
            wait_until("the receiver to listen", lambda: receiver.status == "listening", 10)
            assert receiver.reconnects >= 1
            dispatcher.send("worker-heartbeat")
            wait_until("the heartbeat after the reconnect", lambda: state.events_received == 2, 5)
            client.close()
    finally:
        receiver.stop()
    assert not receiver.alive


def test_kombu_consumer_path_also_works(redis_url: str, unique: str) -> None:
    app = make_app(redis_url, unique)
    state = ClusterState()
    receiver = EventReceiverThread(app, state, lean=False)
    receiver.start()
    try:
        wait_until("the receiver to listen", lambda: receiver.status == "listening", 10)
        with app.connection_for_write() as conn:
            dispatcher = app.events.Dispatcher(conn, hostname=f"w-{unique}@h")
            dispatcher.send("task-received", uuid="t1", name="n", args="(1,)", kwargs="{}")
            dispatcher.send("task-started", uuid="t1")
        wait_until("the task events counted", lambda: state.counts() == (1, 1, 0), 5)
    finally:
        receiver.stop()


def test_wake_cuts_the_reconnect_backoff_short(unique: str) -> None:
    app = make_app(f"redis://127.0.0.1:{free_port()}/0", unique)
    receiver = EventReceiverThread(app, ClusterState(), max_backoff=60.0)
    receiver.start()
    try:
        wait_until(
            "three reconnect attempts", lambda: receiver.reconnects >= 3, 15
        )  # backoff now 8 s and growing
        before = receiver.reconnects
        receiver.wake()
        wait_until("a reconnect right after wake()", lambda: receiver.reconnects > before, 2.0)
    finally:
        receiver.stop(timeout=5)
    assert not receiver.alive
