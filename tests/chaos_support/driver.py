"""A headless console: a ConsoleRuntime started on a broker, stopped warm by a signal.

Usage: ``python -m tests.chaos_support.driver --broker URL --state-dir DIR [--workers N]
[--concurrency C] [--hostname PATTERN] [--no-cron]``. The queue suffix, event store and
visibility timeout come from the environment, as they do for the console's children.

Prints one JSON line once every program is RUNNING (``{"ready": {name: [pid, pgid]}}``) and,
after SIGTERM, SIGINT or SIGHUP has shut everything down warm, one more
(``{"final": {name: [state, exitstatus]}, "lost": [...], "tails": {...}}``) before exiting 0.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

from console.appref import load_app
from console.runtime import ConsoleRuntime
from console.settings import Settings, WorkerGroup
from console.supervision import ProcessState, install_shutdown_signals

#: Output lines that show a task was cut short instead of finished by a warm shutdown.
LOSS_MARKERS = ("WorkerLostError", "exited with 'signal")


def main() -> None:
    """Run the console until a shutdown signal arrives."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--broker", required=True)
    parser.add_argument("--state-dir", required=True, type=Path)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--hostname", default="{name}-{n}@%h")
    parser.add_argument("--no-cron", action="store_true")
    args = parser.parse_args()
    group = WorkerGroup(
        name="worker", processes=args.workers, concurrency=args.concurrency, hostname=args.hostname
    )
    settings = Settings(
        broker=None,
        broker_source="test",
        state_dir=args.state_dir,
        worker_groups=(group,),
        cron=not args.no_cron,
    ).with_broker(args.broker, "test")
    runtime = ConsoleRuntime(settings, load_app(settings.app, args.broker))
    stop = threading.Event()
    install_shutdown_signals(lambda signum: stop.set())
    runtime.start()
    deadline = time.monotonic() + 90
    while not stop.is_set():
        snaps = runtime.supervisor.snapshot()
        if all(s.state is ProcessState.RUNNING for s in snaps):
            ready = {s.name: [s.pid, s.pgid] for s in snaps}
            print(json.dumps({"ready": ready}), flush=True)
            break
        if time.monotonic() > deadline:
            print(json.dumps({"error": [s.description for s in snaps]}), flush=True)
            break
        stop.wait(0.1)
    stop.wait()
    runtime.shutdown()
    snaps = runtime.supervisor.snapshot()
    lost = [
        line
        for s in snaps
        for line in runtime.output(s.name)
        if any(marker in line for marker in LOSS_MARKERS)
    ]
    final = {s.name: [str(s.state), s.exitstatus] for s in snaps}
    tails = {s.name: runtime.output(s.name, 30) for s in snaps if s.exitstatus != 0}
    print(json.dumps({"final": final, "lost": lost, "tails": tails}), flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
