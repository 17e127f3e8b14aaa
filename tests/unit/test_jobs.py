"""The job queue's history stays bounded while a long job runs."""

from __future__ import annotations

import threading

from console.actions import ActionResult
from console.jobs import HISTORY, JobQueue


def test_history_stays_bounded_behind_a_long_running_job() -> None:
    jobs = JobQueue()
    release = threading.Event()

    def hold() -> ActionResult:
        release.wait(30)
        return ActionResult.done("held")

    held = jobs.submit("hold", hold)
    for n in range(3 * HISTORY):  # refused at once, as read-only or bad requests are
        jobs.submit(f"nope {n}", hold, refusal="refused", key=f"k{n}")
    kept = jobs.recent(10 * HISTORY)
    assert len(kept) <= HISTORY + 1, len(kept)  # 601 when the running job held the rest
    assert jobs.get(held.id) is not None
    assert jobs.submit("again", hold, key="k0").action == "again", "a forgotten key is free"
    release.set()
    done = jobs.wait(held.id, 10)
    assert done is not None and done.state == "done"
    jobs.close()
