"""Rolling restart with custom node-name templates: the readiness ping finds each replacement."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from console.actions import ActionResult
from console.programs import alternate_node_name, celery_node_name
from console.runtime import worker_node_name
from console.settings import WorkerGroup, console_id
from console.supervision import ProcessState
from tests.chaos_support.helpers import supervised_workers
from tests.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

#: Far below the supervisor's 120 s step timeout that a name the ping never reaches waits out.
FINISHED_WITHIN = 60.0


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{name}-{n}@%h", "{name}-1.{console}@{host}"),  # the state dir is not the default
        ("%n-{n}@%d", "{short}-1@{domain_or_host}"),  # no domain: Celery fills in the host
        ("plain-{n}", "celery@plain-1"),  # no "@": Celery takes the whole value as the host part
    ],
)
def test_rolling_restart_with_node_name_template(
    template: str,
    expected: str,
    redis_url: str,
    state_dir: Path,
    unique: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    host = socket.gethostname()
    short, _, domain = host.partition(".")
    group = WorkerGroup(name=f"n{unique}", processes=1, concurrency=1, hostname=template)
    group = replace(group, console=console_id(state_dir))  # as the console's settings set it
    node = expected.format(
        name=group.name,
        host=host,
        short=short,
        domain_or_host=domain or host,
        console=group.console,
    )
    assert worker_node_name(group, 1) == node
    with supervised_workers(redis_url, state_dir, unique, group, monkeypatch) as runtime:
        wait_until(f"{node} answering", lambda: runtime.control.ping([node]).get(node, False), 90)
        running = ProcessState.RUNNING  # past startsecs: restarted start-first, not stop-start
        wait_until("RUNNING", lambda: runtime.supervisor.snapshot()[0].state is running, 30)
        pid_before = runtime.supervisor.snapshot()[0].pid
        outcome: list[ActionResult] = []
        began = time.monotonic()
        restarter = threading.Thread(target=lambda: outcome.append(runtime.rolling_restart()))
        restarter.start()
        restarter.join(FINISHED_WITHIN)
        took = time.monotonic() - began
        assert not restarter.is_alive(), f"rolling restart still waiting after {took:.0f}s"
        assert [r.message for r in outcome] == [f"{group.name}: rolling restart done"]
        snap = next(s for s in runtime.supervisor.snapshot() if s.name == f"{group.name}-1")
        assert snap.pid != pid_before and snap.restarts == 1
        assert snap.state is ProcessState.RUNNING
        # The replacement started beside the old worker, on the slot's other node name.
        other = celery_node_name(alternate_node_name(group.node_name(1)))
        assert runtime.control.ping([other]).get(other, False)
        print(f"{template}: {node} restarted and answering in {took:.1f}s")
