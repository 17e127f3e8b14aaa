"""The runtime keeps failed tasks from the task events and counts the last 5 minutes for status."""

from __future__ import annotations

import json
import time

from console.runtime import STATUS_FILE, ConsoleRuntime
from console.supervision.supervisor import Supervisor
from tests.integration.test_own_workers import runtime  # noqa: F401 (fixture)
from tests.supervision_support.fakes import FakeClock


def test_failures_reach_the_data_and_the_status_file(
    runtime: tuple[ConsoleRuntime, Supervisor, FakeClock],  # noqa: F811
) -> None:
    rt, _sup, _clock = runtime
    now = time.time()
    for n, finished in enumerate((now - 30, now - 90, now - 900)):
        uuid = f"f{n}"
        rt.monitor.state.apply_many(
            [
                {"type": "task-received", "uuid": uuid, "hostname": "w@h", "name": "t.boom",
                 "timestamp": finished - 1},
                {"type": "task-failed", "uuid": uuid, "hostname": "w@h", "timestamp": finished,
                 "exception": "ValueError('boom')", "traceback": "Traceback ..."},
            ]
        )  # fmt: skip
    data = rt.poll()
    assert [t.uuid for t in data.failures] == ["f0", "f1", "f2"]
    assert data.failures[0].exception == "ValueError('boom')" and data.failures[0].traceback is None
    status = json.loads((rt.settings.state_dir / STATUS_FILE).read_text())
    assert status["failures_5m"] == 2
