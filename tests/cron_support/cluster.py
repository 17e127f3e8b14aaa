"""Three (or more) bare ``sentry-console run cron`` processes on separate state directories."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kombu import Connection, Exchange, Queue

from console.cron.role import read_role
from console.cron.scheduler import AFTER_HEADER, SENDER_HEADER, SLOT_HEADER
from console.programs import console_command
from tests.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
APP = "tests.cron_support.cronapp:app"


@dataclass
class Cron:
    """One cron process, as on its own host."""

    name: str
    state_dir: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """The current process's pid."""
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        """Whether the process still runs."""
        return self.proc is not None and self.proc.poll() is None

    def role(self) -> str | None:
        """The role the process last reported."""
        if not self.alive():
            return None
        record = read_role(self.state_dir, self.pid)
        return None if record is None else str(record["role"])

    def role_since(self) -> float | None:
        """When the process took its current role (epoch seconds)."""
        record = read_role(self.state_dir, self.pid) if self.alive() else None
        return None if record is None else float(record["since"])


@dataclass
class Sent:
    """One tick message found in the queue."""

    slot: float
    after: float
    sender: str


@dataclass
class CronCluster:
    """Start, signal and stop cron processes sending to one queue on one broker."""

    broker_url: str
    queue: str
    root: Path
    crons: list[Cron] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    """Extra environment for every cron (e.g. SENTRY_CONF)."""

    def declare(self, url: str | None = None) -> None:
        """Create the tick queue (AMQP drops messages for a missing queue)."""
        with Connection(url or self.broker_url) as conn:
            self._queue()(conn.default_channel).declare()

    def queue_object(self) -> Queue:
        """The tick queue as kombu declares it."""
        return self._queue()

    def _queue(self) -> Queue:
        return Queue(self.queue, Exchange(self.queue, type="direct"), routing_key=self.queue)

    def add(self, name: str) -> Cron:
        """A cron with its own state directory, started."""
        state = self.root / name
        state.mkdir(mode=0o700, exist_ok=True)
        cron = Cron(name, state, self.root / f"{name}.log")
        self.crons.append(cron)
        self.start(cron)
        return cron

    def start(self, cron: Cron) -> None:
        """(Re)start ``cron``'s process."""
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "SENTRY_BROKER_URL": self.broker_url,
            "SENTRY_CONSOLE_STATE_DIR": str(cron.state_dir),
            "CRON_TEST_QUEUE": self.queue,
            "PYTHONUNBUFFERED": "1",
        }
        env.pop("SENTRY_CONF", None)
        env.update(self.env)
        command = [*console_command(), "--app", APP, "run", "cron", "-l", "INFO"]
        with cron.log.open("ab") as out:
            cron.proc = subprocess.Popen(
                command, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT
            )

    def signal(self, cron: Cron, sig: signal.Signals) -> None:
        """Send ``sig`` to the cron's process (by pid)."""
        assert cron.proc is not None
        cron.proc.send_signal(sig)
        if sig == signal.SIGKILL:
            cron.proc.wait(timeout=10)

    def leaders(self) -> list[Cron]:
        """The running crons whose role is leader (a stopped one may still claim it)."""
        return [c for c in self.crons if c.role() == "leader"]

    def wait_for_leader(self, exclude: Cron | None = None, timeout: float = 30.0) -> Cron:
        """The one leader other than ``exclude``, once there is exactly one."""

        def single() -> Cron | None:
            leaders = [c for c in self.leaders() if c is not exclude]
            return leaders[0] if len(leaders) == 1 else None

        return wait_until("a single leader", single, timeout, step=0.05, seen=self.roles)

    def roles(self) -> dict[str, str | None]:
        """Each cron's reported role."""
        return {c.name: c.role() for c in self.crons}

    def stop_all(self) -> None:
        """Warm-stop every process (SIGCONT first, in case one is frozen), then SIGKILL."""
        for cron in self.crons:
            if cron.alive():
                assert cron.proc is not None
                with contextlib.suppress(ProcessLookupError):
                    cron.proc.send_signal(signal.SIGCONT)
                    cron.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for cron in self.crons:
            if cron.proc is None:
                continue
            try:
                cron.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                cron.proc.kill()
                cron.proc.wait()

    def sent(self, url: str | None = None) -> list[Sent]:
        """Every tick message in the queue (consumed), in slot order."""
        found: list[Sent] = []
        with Connection(url or self.broker_url) as conn, conn.SimpleQueue(self._queue()) as q:
            while True:
                try:
                    message = q.get_nowait()
                except q.Empty:
                    break
                headers: dict[str, Any] = message.headers
                found.append(
                    Sent(
                        float(headers[SLOT_HEADER]),
                        float(headers[AFTER_HEADER]),
                        str(headers[SENDER_HEADER]),
                    )
                )
                message.ack()
        return sorted(found, key=lambda s: s.slot)

    def logs(self) -> str:
        """Every cron's output, for an assertion message."""
        parts = []
        for cron in self.crons:
            text = cron.log.read_text(errors="replace") if cron.log.exists() else ""
            lines = [ln for ln in text.splitlines() if "role" in ln or "rror" in ln]
            parts.append(f"== {cron.name}\n" + "\n".join(lines[-30:]))
        return "\n".join(parts)


def check_sends(sent: list[Sent], windows: list[tuple[float, float]]) -> dict[str, Any]:
    """Assert each slot was sent once and the sends chain up; return figures.

    Each message covers the slots after its ``after`` header up to its own slot. Sorted by
    slot, each message's ``after`` must be the previous message's slot: no slot twice, none
    skipped. A message covering more than one slot (a catch-up) and any break in the chain are
    allowed only inside ``windows`` (takeovers, outages: epoch-second ranges).
    """
    assert sent, "no tick was sent at all"
    slots = [s.slot for s in sent]
    dupes = sorted({s for s in slots if slots.count(s) > 1})
    assert not dupes, f"slots sent twice: {dupes}"

    def inside(t: float) -> bool:
        return any(start <= t <= end for start, end in windows)

    catch_ups = []
    for prev, cur in itertools.pairwise(sent):
        assert cur.after >= prev.slot, f"overlapping sends: {prev} then {cur}"
        if cur.after != prev.slot:
            assert inside(cur.slot), f"slots skipped outside a takeover: {prev} then {cur}"
        if cur.slot - cur.after > 1.0:
            assert inside(cur.slot), f"catch-up outside a takeover: {prev} then {cur}"
            catch_ups.append({"slot": cur.slot, "covers": cur.slot - cur.after, "by": cur.sender})
    return {"messages": len(sent), "slots": slots[-1] - sent[0].after, "catch_ups": catch_ups}


def dump(path: Path, data: Any) -> None:
    """Write ``data`` as JSON (figures kept next to the logs)."""
    path.write_text(json.dumps(data, indent=2))
