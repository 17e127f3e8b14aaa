"""The output pump keeps draining every pipe when handling one of them fails."""

from __future__ import annotations

import fcntl
import logging
import os
import struct
import termios
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from console.supervision.output import OutputBuffer, OutputPump, RotatingLogFile
from tests.waiting import wait_until

PIPE_FILL = 256 * 1024
"""More than a Linux pipe holds (64 KiB): a writer of this much blocks unless someone reads."""


@pytest.fixture
def pump() -> Iterator[OutputPump]:
    """A running pump, stopped at the end."""
    pump = OutputPump()
    pump.start()
    yield pump
    pump.stop(timeout=5)


def piped(pump: OutputPump, sink: OutputBuffer) -> int:
    """A pipe whose read end the pump drains into ``sink``; returns the write end."""
    read, write = os.pipe()
    os.set_blocking(read, False)
    pump.add(read, sink)
    return write


def unread(fd: int) -> int:
    """Bytes waiting in the pipe of ``fd``."""
    return struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0" * 4))[0]


def write_all(fd: int, data: bytes) -> threading.Thread:
    """Write ``data`` to ``fd`` from a thread (it blocks while nobody drains the pipe)."""

    def run() -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


class Collected(logging.Handler):
    """Keeps the records logged to ``sentry_console.supervision`` during the test (caplog sees
    nothing once ``console.consolelog`` stops the ``sentry_console`` tree propagating)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        """Keep ``record``."""
        self.records.append(record)


@pytest.fixture
def logged() -> Iterator[Collected]:
    """What the supervision logger says at ERROR or above."""
    handler = Collected()
    logger = logging.getLogger("sentry_console.supervision")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def test_a_failing_pipe_neither_stops_the_others_nor_itself(
    pump: OutputPump, tmp_path: Path, logged: Collected
) -> None:
    # A log file closed under the pump (as a program's buffer being closed while its last
    # output arrives) makes every write of that program's output raise ValueError.
    logfile = RotatingLogFile(tmp_path / "broken.log", maxbytes=0, backups=0)
    broken = OutputBuffer(100, logfile)
    logfile.close()
    healthy = OutputBuffer(100)
    broken_fd = piped(pump, broken)
    healthy_fd = piped(pump, healthy)
    try:
        os.write(broken_fd, b"first\n")
        wait_until("the failing pipe read", lambda: unread(broken_fd) == 0, timeout=10)
        os.write(healthy_fd, b"still read\n")
        wait_until("the other pipe drained", lambda: healthy.lines() == ["still read"], 10)
        # The failing pipe is still read, so its program never blocks on a full pipe.
        writer = write_all(broken_fd, (b"x" * 1023 + b"\n") * (PIPE_FILL // 1024))
        wait_until("the failing pipe drained", lambda: not writer.is_alive(), timeout=10)
        assert pump.errors >= 2
        assert any("output" in r.getMessage() for r in logged.records), logged.records
        assert len([r for r in logged.records if r.exc_info]) == 1, "one traceback per pipe"
    finally:
        os.close(broken_fd)
        os.close(healthy_fd)
