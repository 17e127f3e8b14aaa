"""The console under test: the real ConsoleApp on a terminal, with two probes for the runner.

Run by the runner on a pseudo-terminal as
``python -m tests.benchmarks.compare.console_proc --broker URL --marks FILE [--workers N]``.
It is ``sentry-console`` minus the embedded broker and the lock: the same runtime, the same app,
the same rendering. The probes write into a 16-byte shared file: the number of events the
cluster state received (only with ``--count-events``, so idle figures carry no probe thread) and
the wall time of the first frame rendered with ``--expect`` workers listed.
"""

from __future__ import annotations

import argparse
import threading
import time
from pathlib import Path
from typing import Any

from console.appref import load_app
from console.runtime import ConsoleRuntime
from console.settings import Settings, WorkerGroup
from tests.benchmarks.compare.benchapp import APP_PATH
from tests.benchmarks.compare.marks import Marks


def measured_app(runtime: ConsoleRuntime, marks: Marks, expect: int) -> Any:
    """ConsoleApp plus a note of the first frame that lists the expected workers.

    Textual is imported here, after the runtime started, as ``console.ui.launch`` does.
    """
    from textual import on

    from console.ui.app import ConsoleApp, DashboardUpdated

    class MeasuredConsoleApp(ConsoleApp):
        @on(DashboardUpdated)
        def note_frame(self, message: DashboardUpdated) -> None:
            """Once the expected workers are online, stamp the frame that shows them."""
            online = sum(1 for w in message.data.workers if w.online)
            if not marks.frame and online >= expect:
                self.call_after_refresh(self._stamp)

        def _stamp(self) -> None:
            if not marks.frame:
                marks.frame = time.time()
                marks.write()

    return MeasuredConsoleApp(runtime)


def count_events(runtime: ConsoleRuntime, marks: Marks, stop: threading.Event) -> None:
    """Copy the cluster state's event count into the shared file every 50 ms."""
    state = runtime.monitor.state
    while not stop.wait(0.05):
        marks.events = state.events_received
        marks.write()


def main() -> None:
    """Start the runtime and the console app, as ``sentry-console`` does, until stopped."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--broker", required=True)
    parser.add_argument("--marks", type=Path, required=True)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--workers", type=int, default=0, help="worker processes to supervise")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--expect", type=int, default=1, help="workers listed = complete frame")
    parser.add_argument("--refresh", type=float, default=1.0)
    parser.add_argument("--count-events", action="store_true")
    opts = parser.parse_args()
    marks = Marks(opts.marks)
    group = WorkerGroup(
        name="worker", processes=opts.workers, concurrency=opts.concurrency, hostname="cw-{n}@%h"
    )
    settings = Settings(
        broker=None,
        broker_source="bench",
        app=APP_PATH,
        state_dir=opts.state_dir,
        worker_groups=(group,),
        cron=False,
        refresh_interval=opts.refresh,
    ).with_broker(opts.broker, "bench")
    opts.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    runtime = ConsoleRuntime(settings, load_app(APP_PATH, opts.broker))
    stop = threading.Event()
    try:
        runtime.start()
        if opts.count_events:
            threading.Thread(target=count_events, args=(runtime, marks, stop), daemon=True).start()
        measured_app(runtime, marks, opts.expect).run()
    finally:
        stop.set()
        runtime.shutdown()


if __name__ == "__main__":
    main()
