"""From saving a task's source to the task returning the new value, under ``--reload``.

A console runtime with reload on supervises one worker and the cron of a throwaway app (see
tests/cluster_support/reload_app.py) on a claimed database of the Redis at 127.0.0.1:6379.
Each round saves a new body for the task, waits for the worker to be replaced, runs the task
and checks its value; the figure is from the save to the result. Run:
``./dev bench tests/benchmarks/bench_reload_latency.py [--rounds 5]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from console.appref import load_app  # noqa: E402
from console.runtime import ConsoleRuntime  # noqa: E402
from console.settings import Settings, WorkerGroup  # noqa: E402
from console.supervision import ProcessState, Supervisor  # noqa: E402
from tests.chaos_support.helpers import kill_groups  # noqa: E402
from tests.cluster_support.reload_app import TASK, save, tasks_source, write_package  # noqa: E402
from tests.redis_claim import claimed_db  # noqa: E402
from tests.waiting import wait_until  # noqa: E402


def worker_pid(rt: ConsoleRuntime) -> int | None:
    """The supervised worker's pid (None between processes)."""
    return next(s.pid for s in rt.supervisor.snapshot() if s.name == "worker-1")


def replaced(rt: ConsoleRuntime, before: int | None) -> bool:
    """Whether a worker other than ``before`` runs now."""
    return worker_pid(rt) not in (before, None)


def main() -> None:
    """Run the rounds and print each latency and their median."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    suffix = uuid.uuid4().hex[:8]
    with claimed_db(ttl=1800) as claim, tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch) / "src"
        package = write_package(root, suffix)
        sys.path.insert(0, str(root))
        os.environ["PYTHONPATH"] = str(root)
        os.environ["SENTRY_BROKER_URL"] = claim.url
        state = Path(scratch) / "state"
        state.mkdir(mode=0o700)
        settings = Settings(
            broker=None,
            broker_source="bench",
            app=f"{package.name}.app:app",
            state_dir=state,
            worker_groups=(WorkerGroup(concurrency=1, hostname=f"rl{suffix}-{{n}}@%h"),),
            reload=True,
        ).with_broker(claim.url, "bench")
        rt = ConsoleRuntime(settings, load_app(settings.app, claim.url), Supervisor())
        rt.start()
        latencies = []
        try:
            assert rt.supervisor.wait_for(
                lambda snaps: all(s.state is ProcessState.RUNNING for s in snaps), 60
            ), "the programs did not start"
            assert rt.app.send_task(TASK).get(timeout=60) == "first"
            for n in range(args.rounds):
                before = worker_pid(rt)
                expected = f"round {n}"
                saved = time.monotonic()
                save(package / "tasks.py", tasks_source(repr(expected)))
                wait_until("a new worker", partial(replaced, rt, before), 60)
                got = rt.app.send_task(TASK).get(timeout=60)
                took = time.monotonic() - saved
                assert got == expected, (got, expected)
                latencies.append(took)
                print(f"round {n + 1}: new value {took:.2f} s after the save", flush=True)
                # Let the new worker and the cron settle before the next edit.
                assert rt.supervisor.wait_for(
                    lambda snaps: all(s.state is ProcessState.RUNNING for s in snaps), 60
                )
        finally:
            groups = [s.pgid for s in rt.supervisor.snapshot() if s.pgid]
            rt.shutdown()
            kill_groups(groups)
    print(
        f"save to new value: median {statistics.median(latencies):.2f} s "
        f"[{min(latencies):.2f}-{max(latencies):.2f}] over {len(latencies)} rounds (goal < 5 s)"
    )


if __name__ == "__main__":
    main()
