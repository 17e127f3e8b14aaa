"""What a client of the supervisor server costs: start-up time and peak RSS of ``ctl status``
and of an attached TUI, and which engine modules each imports.

Starts an in-process server (fake programs) on a private embedded Redis, then, ``--runs``
times each, runs under ``/usr/bin/time``:

- ``python -m console ctl status`` (the whole command, to its exit);
- a TUI attached the way ``sentry-console`` attaches it (headless, no terminal needed), which
  leaves as soon as it has shown its first snapshot;

and (up to 3 times) the real ``sentry-console`` on a pseudo-terminal, whose RSS is read once it
has shown live data for a few seconds, beside a bare Textual app on the same terminal (the floor
that no Textual screen goes under).

Run: ``./dev bench tests/benchmarks/bench_client_cost.py [--runs 10]`` (figures in README).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pty
import select
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))

from console.broker.embedded import EmbeddedBroker
from tests.server_support import inprocess_server

ROOT = Path(__file__).resolve().parents[2]
ENGINE = ("celery", "kombu", "redis", "amqp", "billiard")

# An attached TUI as ``console.ui.launch.run_console`` builds it, headless, gone after its
# first snapshot; it prints the engine modules it imported and how long the data took.
TUI = """
import sys, time
t0 = time.perf_counter()
from console.server.client import RemoteSource, ServerClient
from console.settings import resolve_settings
settings = resolve_settings()
client = ServerClient(settings.state_dir)
client.hello(client="tui")
source = RemoteSource(client, settings, read_only=False)
from console.ui.app import ConsoleApp

class Once(ConsoleApp):
    def _show_data(self, data, message):
        super()._show_data(data, message)
        self.exit()

app = Once(source)
app.run(headless=True, size=(100, 30))
client.close()
engine = sorted({m.split('.')[0] for m in sys.modules} & set(ENGINE))
print(f'first snapshot after {time.perf_counter() - t0:.3f} s; engine: {engine or "none"}')
""".replace("ENGINE", repr(ENGINE))

# The floor under any Textual screen: a bare app with a header, a footer and two filled tables
# (the console's layout without the console), run on the same terminal for the same time.
BARE_TEXTUAL = """
from textual.app import App
from textual.widgets import DataTable, Footer, Header

class Bare(App):
    def compose(self):
        yield Header()
        for _ in range(2):
            table = DataTable()
            table.add_columns("name", "state", "pid", "uptime")
            table.add_rows([(f"worker-{n}", "RUNNING", str(1000 + n), "1m") for n in range(10)])
            yield table
        yield Footer()

    def on_mount(self):
        self.title = "bare textual"

Bare().run()
"""

CTL_MODULES = """
import sys
from console.cli import main
try:
    main(['ctl', 'status'])
except SystemExit:
    pass
engine = sorted({m.split('.')[0] for m in sys.modules} & set(ENGINE))
print('engine:', engine or 'none', file=sys.stderr)
""".replace("ENGINE", repr(ENGINE))


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, int, str]:
    """Wall seconds, peak RSS (KiB) and stderr+stdout tail of one run under /usr/bin/time."""
    fmt = "TIME %e %M"
    out = subprocess.run(
        ["/usr/bin/time", "-f", fmt, *argv],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = (out.stdout + out.stderr).splitlines()
    if out.returncode not in (0, 2):  # ctl status exits 2 when a program is FATAL
        raise SystemExit(f"{argv[-1][:40]!r} failed ({out.returncode}): {out.stderr[-2000:]}")
    stamp = next(ln for ln in reversed(lines) if ln.startswith("TIME "))
    _, secs, rss = stamp.split()
    notes = [ln for ln in lines if "engine" in ln]
    return float(secs), int(rss), notes[-1] if notes else ""


def report(name: str, runs: list[tuple[float, int, str]]) -> None:
    """Median and range of the runs' time and RSS."""
    secs = [r[0] for r in runs]
    rss = [r[1] / 1024 for r in runs]
    print(
        f"{name:<12} time median {statistics.median(secs):.2f} s "
        f"(min {min(secs):.2f}, max {max(secs):.2f}); "
        f"peak RSS median {statistics.median(rss):.1f} MiB "
        f"(min {min(rss):.1f}, max {max(rss):.1f}); {runs[-1][2]}"
    )


def on_terminal(
    env: dict[str, str],
    seconds: float,
    argv: tuple[str, ...] = ("-m", "console"),
    shows: bytes = b"attached",
    leave: bytes = b"d",
) -> float:
    """RSS (MiB) of ``python ARGV`` (``sentry-console`` unless told) on a 120x30
    pseudo-terminal ``seconds`` after it started, showing ``shows``; then it is left with the
    ``leave`` key (``d``: detach)."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: the real command, as an operator types it
        os.chdir(ROOT)
        term = {"TERM": "xterm-256color", "COLUMNS": "120", "LINES": "30"}
        os.execvpe(sys.executable, [sys.executable, *argv], env | term)
    shown = b""
    began = time.monotonic()
    while time.monotonic() - began < seconds:
        if select.select([fd], [], [], 0.2)[0]:
            with contextlib.suppress(OSError):
                shown = (shown + os.read(fd, 65536))[-65536:]
    status = Path(f"/proc/{pid}/status").read_text()
    rss = next(int(ln.split()[1]) for ln in status.splitlines() if ln.startswith("VmRSS"))
    os.write(fd, leave)
    with contextlib.suppress(OSError):
        while select.select([fd], [], [], 5)[0] and os.read(fd, 65536):
            pass
    os.waitpid(pid, 0)
    os.close(fd)
    if shows not in shown:
        raise SystemExit(f"{' '.join(argv)[:40]} on the terminal never showed {shows!r}")
    return rss / 1024


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--terminal-seconds", type=float, default=8.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-client-") as tmp:
        state = Path(tmp) / "state"
        broker = EmbeddedBroker(Path(tmp) / "broker")
        broker.start()
        try:
            with inprocess_server(broker.url, state):
                env = dict(os.environ, SENTRY_CONSOLE_STATE_DIR=str(state))
                env["SENTRY_BROKER_URL"] = broker.url
                py = sys.executable
                ctl = [timed([py, "-m", "console", "ctl", "status"], env) for _ in range(args.runs)]
                ctl[-1] = (*ctl[-1][:2], timed([py, "-c", CTL_MODULES], env)[2])
                report("ctl status", ctl)
                tui = [timed([py, "-c", TUI], env) for _ in range(args.runs)]
                report("attached TUI", tui)
                rss = [on_terminal(env, args.terminal_seconds) for _ in range(min(args.runs, 3))]
                print(
                    f"TUI on a terminal, {args.terminal_seconds:g} s after attaching: RSS median "
                    f"{statistics.median(rss):.1f} MiB (min {min(rss):.1f}, max {max(rss):.1f})"
                )
                bare = [
                    on_terminal(env, args.terminal_seconds, ("-c", BARE_TEXTUAL),
                                b"bare textual", b"\x11")  # ctrl+q quits a Textual app
                    for _ in range(min(args.runs, 3))
                ]  # fmt: skip
                print(
                    f"a bare Textual app (header, footer, 2 tables) on the same terminal: RSS "
                    f"median {statistics.median(bare):.1f} MiB (min {min(bare):.1f}, "
                    f"max {max(bare):.1f}): the floor under the TUI's figure"
                )
        finally:
            broker.stop()


if __name__ == "__main__":
    main()
