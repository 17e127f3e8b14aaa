"""sentry-console side by side with Flower, ``celery events`` and supervisor, on one machine.

Run: ``python tests/benchmarks/bench_compare.py [--quick] [--only idle,load,...]``.
Claims an empty database of the Redis at 127.0.0.1:6379, runs every scenario of
``tests/benchmarks/compare`` against its baseline in the same run, prints one table (median of
the runs with [min-max]) and deletes what it created. Every process it starts is killed with its
whole process group when it ends, also on Ctrl-C or failure.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import signal
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))

from tests.benchmarks.compare import monitoring, processes
from tests.benchmarks.compare.monitoring import Plan, Results, say
from tests.benchmarks.compare.procs import ROOT, Launcher
from tests.benchmarks.compare.report import Row, Stat, render
from tests.redis_claim import claimed_db

SCENARIOS = {
    "idle": monitoring.idle,
    "load": monitoring.load,
    "startup": monitoring.startup,
    "restart": processes.restart,
    "overhead": processes.overhead,
}

QUICK = Plan(
    idle_seconds=15.0,
    idle_runs=3,
    replay_seconds=8.0,
    replay_runs=3,
    soak_tasks=0,
    startup_runs=3,
    restart_runs=3,
    overhead_runs=2,
    overhead_tasks=4_000,
)


def ratio_at_most(ours: Stat, base: Stat, limit: float) -> bool | None:
    """Whether median(ours) <= limit x median(base); None when either is missing."""
    if not ours.values or not base.values:
        return None
    return ours.median <= limit * base.median


def rows(res: Results, plan: Plan) -> list[Row]:
    """The table's rows from the measured figures."""
    g = res.get
    out = [
        Row("idle CPU % of a core", g("idle cpu console"), "celery events",
            g("idle cpu celery events"), ".2f", "<= 0.5x",
            ratio_at_most(g("idle cpu console"), g("idle cpu celery events"), 0.5)),
        Row("idle CPU % of a core", g("idle cpu console"), "Flower", g("idle cpu flower"), ".2f"),
        Row("idle RSS MB", g("idle rss console"), "Flower", g("idle rss flower"), ".0f",
            "<= 1.5x", ratio_at_most(g("idle rss console"), g("idle rss flower"), 1.5)),
        Row("idle RSS MB", g("idle rss console"), "celery events", g("idle rss celery events"),
            ".0f"),
    ]  # fmt: skip
    for rate in plan.rates:
        top = rate == max(plan.rates)
        seen = g(f"load seen {rate} console")
        lag = g(f"load lag {rate} console")
        cpu = g(f"load cpu {rate} console")
        rss = g(f"load rss {rate} console")
        lossless = min(seen.values) >= 1.0 if seen.values else None
        in_time = not any(math.isnan(v) for v in lag.values) if lag.values else None
        sent_c, sent_f = g(f"load sent rate {rate} console"), g(f"load sent rate {rate} flower")
        reached = sent_c.values + sent_f.values
        out += [
            Row(f"{rate:,}/s replay reached tasks/s", sent_c, "Flower's", sent_f, ".0f",
                f">= {0.95 * rate:,.0f}", min(reached) >= 0.95 * rate if reached else None),
            Row(f"{rate:,}/s events seen/sent", seen, "Flower", g(f"load seen {rate} flower"),
                ".4f", "1.0000" if top else "", lossless if top else None),
            Row(f"{rate:,}/s catch-up lag s", lag, "Flower", g(f"load lag {rate} flower"), ".2f",
                "<= 1 s" if top else "",
                (in_time and lag.median <= 1.0) if top and in_time is not None else None),
            Row(f"{rate:,}/s CPU % of a core", cpu, "Flower", g(f"load cpu {rate} flower"), ".1f",
                "<= 0.5x" if rate == min(plan.rates) else "",
                ratio_at_most(cpu, g(f"load cpu {rate} flower"), 0.5)
                if rate == min(plan.rates) else None),
            Row(f"{rate:,}/s RSS MB", rss, "Flower", g(f"load rss {rate} flower"), ".0f",
                "<= 150 MB", max(rss.values) <= 150 if rss.values else None),
        ]  # fmt: skip
    soak = g("load soak rss console")
    if soak.values:
        tasks = int(g("load soak tasks").median)
        out.append(Row(f"RSS MB after {tasks:,} tasks", soak, "", None, ".0f", "<= 150 MB",
                       max(soak.values) <= 150))  # fmt: skip
    out += [
        Row("start-up to workers listed s", g("startup console"), "Flower", g("startup flower"),
            ".2f", "<= 1.0x", ratio_at_most(g("startup console"), g("startup flower"), 1.0)),
        Row("restart to ping s", g("restart console"), "supervisord", g("restart supervisord"),
            ".2f", "<= 1.0x", ratio_at_most(g("restart console"), g("restart supervisord"), 1.0)),
        Row("restart to ping s", g("restart console"), "stopasgroup=true",
            g("restart supervisord group"), ".2f"),
        Row("2 workers tasks/s", g("overhead console"), "by hand", g("overhead by hand"), ".0f",
            ">= 0.97x", None if not g("overhead by hand").values else
            g("overhead console").median >= 0.97 * g("overhead by hand").median),
        Row("console CPU % of a core then", g("overhead console cpu"), "", None, ".1f"),
    ]  # fmt: skip
    return out


def main() -> None:
    """Run the chosen scenarios and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs (about 4 minutes)")
    parser.add_argument("--only", default=",".join(SCENARIOS), help="comma-separated scenarios")
    opts = parser.parse_args()
    chosen = [s.strip() for s in opts.only.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario {unknown[0]!r} (known: {', '.join(SCENARIOS)})")
    plan = QUICK if opts.quick else Plan()
    os.environ["PYTHONPATH"] = str(ROOT)  # the workers the console spawns import the bench app

    def interrupted(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGHUP, interrupted)
    launcher = Launcher()
    results = Results()
    began = time.monotonic()
    try:
        with claimed_db() as db, tempfile.TemporaryDirectory(prefix="bench-compare-") as tmp:
            say(f"Redis db {db.db}, work dir {tmp}")
            for name in chosen:
                workdir = Path(tmp) / name
                workdir.mkdir()
                SCENARIOS[name](plan, launcher, db, workdir, results)
                launcher.close()
    except KeyboardInterrupt:
        print("interrupted; every process started here was killed", file=sys.stderr)
        raise SystemExit(130) from None
    finally:
        launcher.close()
    took = time.monotonic() - began
    title = (
        f"sentry-console vs Flower 2.2 / celery events / supervisord: median [min-max] of "
        f"{'quick ' if opts.quick else ''}runs, {os.cpu_count()} cores, "
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"{platform.system()} {platform.release()}; took {took / 60:.1f} min"
    )
    print()
    print(render(rows(results, plan), title))


if __name__ == "__main__":
    main()
