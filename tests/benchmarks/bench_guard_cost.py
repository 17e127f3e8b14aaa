"""Benchmark: what a program's guard and its sentinel cost. Prints a table; not collected by pytest.

Starts PROGRAMS copies of ``sleep`` under the real ``Supervisor``, ROUNDS times, and prints: the
time from ``add_program`` until the program's own pid is known (median and worst), and the memory
of the guard and of the sentinel: RSS, and PSS (each shared page divided among the processes that
share it, so guard + sentinel PSS is what the pair adds), as psutil reads them from /proc.
Run from the repository root (a few seconds): ``python tests/benchmarks/bench_guard_cost.py``.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from console.supervision import ProgramConfig, Supervisor

PROGRAMS = 4
ROUNDS = 5


def group_members(pgid: int) -> list[psutil.Process]:
    """Live processes of the process group ``pgid``."""
    members = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid:
                members.append(proc)
        except (ProcessLookupError, psutil.Error):
            continue
    return members


def main() -> None:
    """Run the rounds and print the table."""
    starts: list[float] = []
    memory: dict[str, list[tuple[int, int]]] = {"guard": [], "sentinel": [], "pair": []}
    for round_no in range(ROUNDS):
        sup = Supervisor(tick_interval=0.01)
        sup.run_in_background()
        try:
            began = {}
            for n in range(PROGRAMS):
                name = f"sleep-{round_no}-{n}"
                began[name] = time.perf_counter()
                sup.add_program(ProgramConfig(name, ["sleep", "60"], startsecs=0))
            pending = set(began)
            deadline = time.monotonic() + 20
            while pending and time.monotonic() < deadline:
                for snap in sup.snapshot():
                    if snap.name in pending and snap.pid is not None:
                        starts.append(time.perf_counter() - began[snap.name])
                        pending.discard(snap.name)
                time.sleep(0.001)
            for snap in sup.snapshot():
                assert snap.pgid is not None and snap.pid is not None
                pair = (0, 0)
                for proc in group_members(snap.pgid):
                    role = "guard" if proc.pid == snap.pgid else None
                    if role is None and proc.pid != snap.pid:
                        role = "sentinel"
                    if role is not None:
                        info = proc.memory_full_info()
                        memory[role].append((info.rss, info.pss))
                        pair = (pair[0] + info.rss, pair[1] + info.pss)
                memory["pair"].append(pair)
        finally:
            sup.shutdown(timeout=5)
    ms = [s * 1000 for s in starts]
    print(f"{len(ms)} programs started, {PROGRAMS} at a time, {ROUNDS} rounds")
    print(
        f"add_program -> program pid known: median {statistics.median(ms):.1f} ms, "
        f"worst {max(ms):.1f} ms"
    )
    for role, values in memory.items():
        if not values:
            print(f"{role:<9} none")
            continue
        rss = statistics.median(v[0] for v in values) / 2**20
        pss = statistics.median(v[1] for v in values) / 2**20
        print(f"{role:<9} median RSS {rss:.1f} MiB, PSS {pss:.2f} MiB ({len(values)} measured)")


if __name__ == "__main__":
    main()
