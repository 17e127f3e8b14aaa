"""Capacity on screen with frozen data: notes said once, columns only once measured."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from console.broker.capacity import BrokerCapacity, QueueCapacity
from console.snapshot import DashboardData
from console.ui.app import ConsoleApp
from console.ui.capacity import CapacityWarnings
from console.ui.demo import DemoSource, demo_data
from console.ui.tables import QueueTable
from tests.waiting import until

NOTE = "management API at http://mgmt:15672 not reachable (connection refused): AMQP figures only"


class CapacitySource(DemoSource):
    """The main demo cluster, polled fast, with capacity figures from the third poll on."""

    def __init__(self) -> None:
        super().__init__("main")
        self.settings = replace(self.settings, refresh_interval=0.05)
        self.polls = 0

    def poll(self) -> DashboardData:
        """The frozen data; capacity (a note, unacked counts) from the third poll."""
        self.polls += 1
        data = demo_data("main")
        if self.polls < 3:
            return data
        queues = tuple(QueueCapacity(q.name, unacked=self.polls) for q in data.queues)
        return replace(data, capacity=BrokerCapacity(queues=queues, notes=(NOTE,)))


class RecordingApp(ConsoleApp):
    """Records every notification."""

    def __init__(self, source: CapacitySource) -> None:
        super().__init__(source, live=True)
        self.said: list[str] = []

    def notify(self, message: Any, **kwargs: Any) -> None:
        """Record, then notify as usual."""
        self.said.append(str(message))
        super().notify(message, **kwargs)


async def test_note_said_once_and_columns_appear_when_measured() -> None:
    source = CapacitySource()
    app = RecordingApp(source)
    async with app.run_test(size=(120, 30)) as pilot:
        table = app.query_one(QueueTable)
        await pilot.pause()
        deadline = time.monotonic() + 20
        while source.polls < 8:
            assert time.monotonic() < deadline, "the app stopped polling"
            if source.polls < 3:
                assert not table.capacity_columns
            await pilot.pause(0.05)

        def shown_poll() -> int:
            capacity = app.last_data.capacity if app.last_data else None
            return (capacity.queues[0].unacked or 0) if capacity and capacity.queues else 0

        await until(pilot, lambda: shown_poll() >= 8, "the eighth poll on the screen")
        assert app.said.count(NOTE) == 1  # shown with six polls' data, said once
        assert table.capacity_columns
        assert "unacked" in [c.key for c in table._shown]
        assert not app.query_one(CapacityWarnings).display
