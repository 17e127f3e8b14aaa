"""How each compared tool is launched and asked what it shows: console, Flower, celery events."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.benchmarks.compare.benchapp import APP_PATH
from tests.benchmarks.compare.marks import read_marks
from tests.benchmarks.compare.procs import BIN, HOST, Launcher, free_port

CELERY_APP = APP_PATH.split(":")[0]


class ConsoleUnderTest:
    """The real console app on a pseudo-terminal (see ``console_proc``)."""

    def __init__(self, launcher: Launcher, url: str, tmp: Path, **options: int | float | bool):
        tmp.mkdir(parents=True, exist_ok=True)
        self.marks = tmp / "console.marks"
        argv = [sys.executable, "-m", "tests.benchmarks.compare.console_proc"]
        argv += ["--broker", url, "--marks", str(self.marks), "--state-dir", str(tmp / "state")]
        for key, value in options.items():
            flag = "--" + key.replace("_", "-")
            if value is True:
                argv.append(flag)
            elif value is not False:
                argv += [flag, str(value)]
        self.launcher = launcher
        self.started = time.time()
        self.proc = launcher.start_in_pty(argv, launcher.env(url))

    @property
    def pid(self) -> int:
        """The console's pid."""
        return self.proc.pid

    def events(self) -> int:
        """Events its cluster state has received."""
        return read_marks(self.marks)[0]

    def first_frame(self) -> float:
        """Wall time of the first frame listing the expected workers (0 until then)."""
        return read_marks(self.marks)[1]

    def drawn(self) -> bool:
        """Whether the first frame listing the expected workers is out."""
        return self.first_frame() > 0

    def stop(self) -> None:
        """Quit as an operator would (warm shutdown of its children), then kill the group."""
        self.launcher.stop(self.proc, grace=20)


class Flower:
    """``celery flower`` on a free port of 127.0.0.1, API open without auth on localhost."""

    def __init__(self, launcher: Launcher, url: str, tmp: Path) -> None:
        self.port = free_port()
        argv = [str(BIN / "celery"), "-A", CELERY_APP, "flower"]
        argv += [f"--port={self.port}", f"--address={HOST}"]
        env = launcher.env(url, FLOWER_UNAUTHENTICATED_API="true")
        self.launcher = launcher
        self.started = time.time()
        self.proc = launcher.start(argv, env, log=tmp / f"flower-{self.port}.log")

    @property
    def pid(self) -> int:
        """Flower's pid."""
        return self.proc.pid

    def get(self, path: str, timeout: float = 5.0) -> str:
        """The body of one page or API answer."""
        with urllib.request.urlopen(f"http://{HOST}:{self.port}{path}", timeout=timeout) as rsp:
            return str(rsp.read().decode())

    def events(self) -> int:
        """Events Flower's state has taken in (the sum of its ``flower_events_total`` counter)."""
        total = 0.0
        for line in self.get("/metrics", timeout=10).splitlines():
            if line.startswith("flower_events_total{"):
                total += float(line.rsplit(" ", 1)[1])
        return int(total)

    def lists_workers(self, names: list[str]) -> bool:
        """Whether its workers page lists every one of ``names``."""
        try:
            page = self.get("/workers", timeout=2)
        except OSError:
            return False
        return all(re.search(re.escape(name), page) for name in names)

    def stop(self) -> None:
        """Kill Flower's process group."""
        self.launcher.stop(self.proc, grace=2)


class CeleryEvents:
    """``celery events``, the curses monitor, on a pseudo-terminal."""

    def __init__(self, launcher: Launcher, url: str) -> None:
        argv = [str(BIN / "celery"), "-A", CELERY_APP, "events"]
        self.launcher = launcher
        self.proc: subprocess.Popen[bytes] = launcher.start_in_pty(argv, launcher.env(url))

    @property
    def pid(self) -> int:
        """Its pid."""
        return self.proc.pid

    def stop(self) -> None:
        """Kill its process group."""
        self.launcher.stop(self.proc, grace=2)


def worker_command(url: str, tmp: Path, node: str, concurrency: int) -> list[str]:
    """The command line the console runs for one worker (``programs.worker_program``)."""
    from console.programs import worker_program
    from console.settings import Settings, WorkerGroup

    group = WorkerGroup(name="worker", processes=1, concurrency=concurrency, hostname=node)
    settings = Settings(broker=None, broker_source="bench", app=APP_PATH, state_dir=tmp, cron=False)
    program = worker_program(settings.with_broker(url, "bench"), group, 1)
    return list(program.command)


def start_workers(
    launcher: Launcher, url: str, tmp: Path, count: int, concurrency: int = 1, prefix: str = "hw"
) -> tuple[list[subprocess.Popen[bytes]], list[str]]:
    """Start ``count`` workers by hand, with the console's own worker command line."""
    procs, names = [], []
    host = __import__("socket").gethostname()
    for n in range(1, count + 1):
        node = f"{prefix}-{n}@%h"
        argv = worker_command(url, tmp, node, concurrency)
        procs.append(launcher.start(argv, launcher.env(url), log=tmp / f"{prefix}-{n}.log"))
        names.append(node.replace("%h", host))
    return procs, names
