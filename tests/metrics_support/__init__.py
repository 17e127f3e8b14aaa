"""Scraping a real metrics listener, and the processes the metrics tests start."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A loopback TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Reply:
    """One HTTP answer."""

    status: int
    content_type: str
    body: str


def get(port: int, path: str, accept: str | None = None, timeout: float = 5.0) -> Reply | None:
    """GET ``http://127.0.0.1:port/path``; None while nothing listens."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if accept:
        request.add_header("Accept", accept)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            body = answer.read().decode()
            return Reply(answer.status, answer.headers.get("Content-Type", ""), body)
    except urllib.error.HTTPError as exc:
        return Reply(exc.code, exc.headers.get("Content-Type", ""), exc.read().decode())
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """Every sample of a scrape, parsed by prometheus_client: (name, sorted labels) -> value."""
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, metric: str, **labels: str) -> float | None:
    """The value of the one sample ``metric`` with exactly ``labels``, or None."""
    return samples.get((metric, tuple(sorted(labels.items()))))


def total(samples: Samples, metric: str, **labels: str) -> float:
    """The sum of every sample ``metric`` whose labels include ``labels``."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == metric and want <= set(ls))


def scrape(port: int) -> Samples | None:
    """A parsed scrape of ``/metrics`` (None while nothing answers)."""
    reply = get(port, "/metrics")
    if reply is None or reply.status != 200:
        return None
    return parse(reply.body)


def console_command(*args: str) -> list[str]:
    """``python -m console ARGS``."""
    return [sys.executable, "-m", "console", *args]


@contextlib.contextmanager
def started(
    command: list[str], env: dict[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """A process in its own session, killed with everything it started however the test ends."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    seen: set[int] = set()
    try:
        yield proc
    finally:
        with contextlib.suppress(psutil.Error):
            seen.update(p.pid for p in psutil.Process(proc.pid).children(recursive=True))
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        for pid in seen:
            with contextlib.suppress(psutil.Error):
                psutil.Process(pid).kill()
