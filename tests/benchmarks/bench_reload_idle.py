"""What ``--reload`` costs while nothing changes: the watcher on a tree of 10,000 source files.

Generates a package of ``--files`` Python files in a temp directory, starts the console's
:class:`CodeReloader` on it, and measures the process's CPU time over ``--seconds`` of quiet.
Then it saves one file and reports how long the reloader took to call back. Run:
``./dev bench tests/benchmarks/bench_reload_idle.py``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from console.reload import QUIET_MS, CodeReloader  # noqa: E402
from console.settings import Settings  # noqa: E402

PER_DIR = 100


def make_tree(root: Path, files: int) -> Path:
    """A package ``benchpkg`` of ``files`` modules, ``PER_DIR`` per subpackage."""
    package = root / "benchpkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for n in range(files - 1):
        sub = package / f"sub{n // PER_DIR:03d}"
        if n % PER_DIR == 0:
            sub.mkdir()
        (sub / f"mod{n % PER_DIR:03d}.py").write_text(f"VALUE = {n}\n")
    return package


def inotify_watches() -> int:
    """Inotify watches this process holds (from /proc/self/fdinfo)."""
    count = 0
    for fd in os.listdir("/proc/self/fdinfo"):
        try:
            text = Path(f"/proc/self/fdinfo/{fd}").read_text()
        except OSError:
            continue
        count += text.count("inotify wd:")
    return count


def main() -> None:
    """Measure and print the watcher's idle CPU and its reaction time."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-reload-") as tmp:
        package = make_tree(Path(tmp), args.files)
        sys.path.insert(0, tmp)
        count = sum(1 for _ in package.rglob("*.py"))
        called = threading.Event()
        settings = Settings(broker=None, broker_source="bench", app="benchpkg.app", reload=True)
        reloader = CodeReloader(settings, lambda changed: called.set())
        reloader.start()
        try:
            if not reloader.watching.wait(60):
                raise SystemExit("error: the watcher did not start within 60 s")
            watches = inotify_watches()
            cpu0, wall0 = time.process_time(), time.monotonic()
            time.sleep(args.seconds)
            cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
            saved = time.monotonic()
            target = package / "sub042" / "mod007.py"
            target.write_text("VALUE = -1\n")
            if not called.wait(30):
                raise SystemExit("error: no reload within 30 s of a change")
            reaction = time.monotonic() - saved
        finally:
            reloader.stop()
    print(f"files watched             {count:,} in {watches} directories (inotify watches)")
    print(f"idle CPU over {wall:.0f} s         {100 * cpu / wall:.3f}% of a core (goal < 1%)")
    print(f"change to callback        {reaction:.2f} s ({QUIET_MS} ms of settling included)")


if __name__ == "__main__":
    main()
