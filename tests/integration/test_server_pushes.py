"""What the server pushes to a subscribed screen: a whole snapshot on subscribing, then only the
fields whose shown content changed, and nothing while only time passes (the screen ages it).

The server here takes no snapshot of its own (``poll=False``): each test hands it snapshots
built from a real one, and reads what reaches a real socket.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from console.broker.capacity import BrokerCapacity, BrokerMemory
from console.cluster.models import WorkerInfo
from console.server.client import RemoteSource
from console.server.connection import Connection
from console.server.protocol import PROTOCOL_VERSION, encode, socket_path
from console.server.server import KEEPALIVE, SupervisorServer
from console.snapshot import DashboardData
from console.supervision import ProcessState
from console.supervision.model import ProcessSnapshot
from console.ui.app import ConsoleApp
from console.ui.tables import ProcessTable
from tests.server_support import client_of, inprocess_server
from tests.waiting import until

T0 = time.time()


def program(uptime: float, now: float, **kw: Any) -> ProcessSnapshot:
    fields: dict[str, Any] = {
        "name": "worker-1",
        "group": "worker",
        "state": ProcessState.RUNNING,
        "pid": 4242,
        "pgid": 4242,
        "started_at": now - uptime,
        "uptime": uptime,
        "restarts": 0,
        "exitstatus": None,
        "backoff_remaining": None,
        "cpu_percent": 0.0,
        "rss_bytes": 50_000_000,
        "description": f"pid 4242, uptime 0:00:{int(uptime):02d}",
    }
    return ProcessSnapshot(**{**fields, **kw})


def worker(heartbeat: float, **kw: Any) -> WorkerInfo:
    fields: dict[str, Any] = {
        "hostname": "w1@host",
        "online": True,
        "last_heartbeat": heartbeat,
        "pid": 77,
        "active": 0,
        "processed": 3,
        "failed": 0,
        "pool_size": 2,
        "queues": ("default",),
        "loadavg": (0.1, 0.2, 0.3),
        "sw_ident": "py-celery",
    }
    return WorkerInfo(**{**fields, **kw})


def snapshot(server: SupervisorServer, at: float, *, used: int = 41_210_000) -> DashboardData:
    """A real snapshot of the server's engine, with one program, one worker and memory set."""
    real = server.runtime.poll()
    memory = BrokerMemory(used=used, limit=1024 * 1024 * 1024, limit_source="maxmemory")
    return replace(
        real,
        taken_at=at,
        processes=(program(30.0, at),),
        workers=(worker(at - 1),),
        broker=replace(real.broker, state="connected", rtt_ms=0.3, last_ok=at),
        capacity=BrokerCapacity(memory=memory),
    )


def later(data: DashboardData, seconds: float) -> DashboardData:
    """``data`` some seconds on, changed only where a screen cannot see it (or ages it)."""
    at = data.taken_at + seconds
    p = data.processes[0]
    assert data.capacity is not None and data.capacity.memory is not None
    memory = data.capacity.memory
    return replace(
        data,
        taken_at=at,
        processes=(program(p.uptime + seconds if p.uptime else 0.0, at),),
        workers=(worker(at - 1, loadavg=(0.5, 0.2, 0.3)),),
        broker=replace(data.broker, rtt_ms=0.6, last_ok=at),  # "<1ms" both
        capacity=replace(
            data.capacity,
            memory=replace(memory, used=(memory.used or 0) + 1000, growth_per_second=50.0),
        ),
    )


class Subscriber:
    """A raw protocol client: hello, subscribe, then each line as it arrives."""

    def __init__(self, server: SupervisorServer) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(10)
        self.sock.connect(str(socket_path(server.settings.state_dir)))
        self.lines = self.sock.makefile("rb")
        self.sock.sendall(encode({"op": "hello", "id": 1, "version": PROTOCOL_VERSION}))
        self.sock.sendall(encode({"op": "subscribe", "id": 2}))

    def next_data(self) -> dict[str, Any]:
        """The fields of the next ``data`` message (replies skipped)."""
        while True:
            message = json.loads(self.lines.readline())
            if message.get("type") == "data":
                return dict(message["data"])

    def close(self) -> None:
        self.sock.close()


@contextmanager
def quiet_server(redis_url: str, state_dir: Path) -> Iterator[SupervisorServer]:
    with inprocess_server(redis_url, state_dir, processes=1, poll=False) as server:
        yield server


def test_only_fields_whose_shown_content_changed_are_pushed(
    redis_url: str, state_dir: Path
) -> None:
    with quiet_server(redis_url, state_dir) as server:
        base = snapshot(server, T0)
        server.publish(base)
        sub = Subscriber(server)
        try:
            whole = sub.next_data()
            assert set(whole) == {f for f in DashboardData.__dataclass_fields__}
            assert server.pushes == 1

            # Only time passed (and what is never shown moved): nothing is pushed. The next
            # line the client reads is the next visible change, alone with its time.
            quiet = later(base, KEEPALIVE - 1)
            server.publish(quiet)
            counted = replace(quiet, events_received=base.events_received + 1)
            server.publish(counted)
            assert sub.next_data().keys() == {"events_received", "taken_at"}
            assert (server.polls, server.pushes) == (3, 2)

            # Each shown change, alone, is pushed alone.
            steps: list[tuple[str, DashboardData]] = []
            data = counted
            data = replace(data, broker=replace(data.broker, rtt_ms=2.4))  # "<1ms" -> "2ms"
            steps.append(("broker", data))
            assert data.capacity is not None and data.capacity.memory is not None
            bigger = replace(data.capacity.memory, used=41_300_000)  # 39.3M -> 39.4M
            data = replace(data, capacity=replace(data.capacity, memory=bigger))
            steps.append(("capacity", data))
            data = replace(data, workers=(worker(data.taken_at, online=False),))
            steps.append(("workers", data))
            backoff = replace(data.processes[0], state=ProcessState.BACKOFF, uptime=None)
            data = replace(data, processes=(backoff,))
            steps.append(("processes", data))
            for field, step in steps:
                server.publish(step)
                assert sub.next_data().keys() == {field, "taken_at"}, field

            # Quiet for KEEPALIVE seconds: the time alone tells screens the server is there.
            server.publish(replace(data, taken_at=data.taken_at + KEEPALIVE))
            assert sub.next_data().keys() == {"taken_at"}
        finally:
            sub.close()


def test_a_screen_keeps_what_was_not_resent_and_ages_what_time_changes(
    redis_url: str, state_dir: Path
) -> None:
    with quiet_server(redis_url, state_dir) as server:
        base = snapshot(server, time.time() - 10)
        server.publish(base)
        source = RemoteSource(client_of(server), server.settings, read_only=True)
        try:
            first = source.poll()
            assert first.processes[0].uptime == pytest.approx(30.0)

            step = replace(later(base, 2.0), events_received=base.events_received + 7)
            server.publish(step)
            second = source.poll()
            assert second.events_received == base.events_received + 7
            assert second.queues is first.queues, "an unchanged field is not decoded again"
            assert second.processes[0].uptime == pytest.approx(32.0)  # aged, not resent

            # Nothing pushed for a refresh: the last snapshot comes back aged to now.
            pushes = server.pushes
            third = source.poll()
            assert server.pushes == pushes
            assert third.taken_at > second.taken_at
            aged = third.processes[0]
            assert aged.uptime == pytest.approx(third.taken_at - (base.taken_at - 30.0))
            assert aged.description == f"pid 4242, uptime 0:00:{int(aged.uptime or 0):02d}"
        finally:
            source.client.close()


async def test_an_attached_tui_counts_uptime_on_with_nothing_pushed(
    redis_url: str, state_dir: Path
) -> None:
    with quiet_server(redis_url, state_dir) as server:
        base = snapshot(server, time.time())
        base = replace(base, processes=(program(3.0, base.taken_at),))
        server.publish(base)
        app = ConsoleApp(RemoteSource(client_of(server), server.settings, read_only=True))

        def uptime() -> str:
            table = app.query_one(ProcessTable)
            return str(table.get_cell("worker-1", "uptime")) if table.row_count else ""

        async with app.run_test(size=(150, 30)) as pilot:
            await until(pilot, lambda: uptime() == "3s" or uptime() == "4s", "the first frame")
            await until(pilot, lambda: uptime() in {"6s", "7s"}, "uptime counted on", 10)
            assert server.pushes == 1, "nothing was pushed after the first snapshot"
            await pilot.press("d")
            await until(pilot, lambda: app.detached, "detached")


class Owner:
    """The least a connection needs of a server."""

    def handle(self, conn: Connection, request: Any) -> bool:
        return True

    def forget(self, conn: Connection) -> None:
        pass


def test_a_slow_client_gets_every_changed_field_merged_into_one_push() -> None:
    ours, theirs = socket.socketpair()
    conn = Connection(Owner(), ours, 0)
    try:
        # Three pushes before the writer sends anything: one line, the newest value of each.
        conn.push_data({"events_received": b"1", "taken_at": b"10.0"})
        conn.push_data({"broker": b'{"state":"down"}', "taken_at": b"11.0"})
        conn.push_data({"events_received": b"3", "taken_at": b"12.0"})
        conn.start()
        theirs.settimeout(10)
        line = theirs.makefile("rb").readline()
        assert json.loads(line)["data"] == {
            "events_received": 3,
            "taken_at": 12.0,
            "broker": {"state": "down"},
        }
    finally:
        conn.close()
        theirs.close()
