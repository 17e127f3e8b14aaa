"""Children's output: a bounded ring buffer per program, an optional rotating log file, and
one selector thread that drains every pipe so no child ever blocks writing."""

from __future__ import annotations

import codecs
import contextlib
import logging
import math
import os
import selectors
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import IO, cast

from console.privatelog import PrivateRotatingFileHandler

log = logging.getLogger("sentry_console.supervision")

COALESCE_SECONDS = 0.01
"""Pause between a pipe becoming readable and reading it (batches small writes)."""
_READ_CHUNK = 65_536
#: A line longer than this is cut into pieces rather than held back forever.
MAX_LINE_BYTES = 65_536


class RotatingLogFile(PrivateRotatingFileHandler):
    """A program's raw output appended to a file that rotates to ``.1`` ... ``.N`` past
    ``maxbytes`` (the standard library's rotation; with no backups the file starts again),
    every file 0600: a program's output may hold what its owner alone should read."""

    def __init__(self, path: Path, maxbytes: int, backups: int) -> None:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        super().__init__(path, maxBytes=maxbytes, backupCount=backups, delay=True)
        self.mode, self.encoding, self.errors = "ab", None, None  # bytes, as the pipe gave them
        self.delay = False  # open now, and again after each rotation
        self.stream = self._open()
        self._size = self.stream.tell()

    def _file(self) -> IO[bytes]:
        """The open file, in binary mode (the handler's stream, typed as text upstream)."""
        if self.stream is None:
            raise ValueError("write to a closed log file")
        return cast("IO[bytes]", self.stream)

    def write(self, data: bytes) -> None:
        """Append ``data``, rotating first when it would pass the size limit."""
        file = self._file()  # a closed file stays closed (ValueError), never reopened here
        if self.maxBytes > 0 and self._size and self._size + len(data) > self.maxBytes:
            self.doRollover()
            file = self._file()
        file.write(data)
        file.flush()
        self._size += len(data)

    def doRollover(self) -> None:
        """Rotate (the standard library's way); with no backups, empty the file instead."""
        if self.backupCount > 0:
            super().doRollover()
        else:
            self._file().truncate(0)
        self._size = 0


class OutputBuffer:
    """The last ``maxlen`` lines a program wrote, kept across its restarts; thread-safe."""

    def __init__(
        self,
        maxlen: int,
        logfile: RotatingLogFile | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._clock = clock  # when each line arrived, shown by the `t` key
        self._lines: deque[str] = deque(maxlen=maxlen)
        self._times: deque[float] = deque(maxlen=maxlen)  # when each line arrived
        self._lock = threading.Lock()
        self._logfile = logfile
        self.written = 0
        """Lines fed so far: a reader that saw this many has seen everything."""

    def feed_lines(self, lines: list[str]) -> None:
        """Append complete lines (without their newline)."""
        now = self._clock()
        with self._lock:
            self._lines.extend(lines)
            self.written += len(lines)
            self._times.extend(now for _ in lines)

    def write_log(self, data: bytes) -> None:
        """Copy raw output to the log file, if there is one."""
        if self._logfile is not None:
            try:
                self._logfile.write(data)
            except OSError:
                self._logfile = None  # a full or vanished disk must not stop the draining

    def since(self, mark: int) -> tuple[int, list[str]]:
        """Lines fed after the first ``mark`` (as many as are still kept), and the new mark."""
        with self._lock:
            count = min(max(self.written - mark, 0), len(self._lines))
            start = len(self._lines) - count
            return self.written, [self._lines[i] for i in range(start, len(self._lines))]

    def lines(self, last: int | None = None, stamps: bool = False) -> list[str]:
        """A copy of the buffered lines, or of the last ``last`` of them.

        With ``stamps`` each line starts with the local time it arrived (``HH:MM:SS``).
        """
        with self._lock:
            count = len(self._lines)
            start = 0 if last is None or last >= count else count - max(last, 0)
            picked = [self._lines[i] for i in range(start, count)]
            times = [self._times[i] for i in range(start, count)] if stamps else []
        if not stamps:
            return picked
        return [f"{_clock(at)} {line}" for at, line in zip(times, picked, strict=True)]

    def close(self) -> None:
        """Close the log file."""
        if self._logfile is not None:
            self._logfile.close()
            self._logfile = None


def _clock(at: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(at))


class _Stream:
    """One pipe being read: its decoder and the unfinished last line."""

    def __init__(self, sink: OutputBuffer) -> None:
        self.sink = sink
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.partial = ""
        self.errors = 0

    def feed(self, data: bytes, final: bool = False) -> None:
        self.sink.write_log(data)
        text = self.partial + self.decoder.decode(data, final)
        lines = text.split("\n")
        self.partial = lines.pop()
        if len(self.partial) > MAX_LINE_BYTES:
            lines.append(self.partial)
            self.partial = ""
        if final and self.partial:
            lines.append(self.partial)
            self.partial = ""
        if lines:
            self.sink.feed_lines(lines)


class OutputPump:
    """A single thread that drains every registered pipe into its program's buffer."""

    def __init__(self, on_eof: Callable[[], None] | None = None) -> None:
        self._on_eof = on_eof  # a pipe closed: its program has probably exited
        self._selector = selectors.DefaultSelector()
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        os.set_blocking(self._wake_write, False)
        self._selector.register(self._wake_read, selectors.EVENT_READ, None)
        self._pending: list[tuple[int, OutputBuffer]] = []
        self._lock = threading.Lock()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.errors = 0
        """Failures handling a pipe's output: that output is lost, the pipe is still read."""

    def start(self) -> None:
        """Start the draining thread (idempotent)."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="output-pump", daemon=True)
                self._thread.start()

    def add(self, fd: int, sink: OutputBuffer) -> None:
        """Drain ``fd`` (non-blocking, now owned by the pump) into ``sink`` until end of file."""
        with self._lock:
            if self._stopping:
                os.close(fd)
                return
            self._pending.append((fd, sink))
        self._wake()
        self.start()

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._wake_write, b"x")

    def _run(self) -> None:
        while True:
            with self._lock:
                pending, self._pending = self._pending, []
                stopping = self._stopping
            for fd, sink in pending:
                try:
                    self._selector.register(fd, selectors.EVENT_READ, _Stream(sink))
                except (OSError, ValueError, KeyError):  # a closed or duplicate descriptor
                    self.errors += 1
                    log.exception("output pump: cannot watch descriptor %d", fd)
            if stopping:
                break
            ready = self._selector.select()
            if any(key.data is not None for key, _ in ready):
                # Let a chatty child's lines pile up a moment, so one read takes many of them
                # instead of one wake-up per line; the pipe holds far more than this pause.
                time.sleep(COALESCE_SECONDS)
            for key, _ in ready:
                if key.data is None:
                    with contextlib.suppress(BlockingIOError):
                        os.read(self._wake_read, 4096)
                    continue
                self._read(key.fd, key.data)
        for key in list(self._selector.get_map().values()):
            if key.data is not None:
                self._drain_and_close(key.fd, key.data)

    def _read(self, fd: int, stream: _Stream) -> None:
        try:
            data = os.read(fd, _READ_CHUNK)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            self._feed(stream, data)
            return
        self._feed(stream, b"", final=True)
        self._close(fd)
        if self._on_eof is not None:
            try:
                self._on_eof()
            except Exception:
                self._failed(stream, "end-of-output callback")

    def _feed(self, stream: _Stream, data: bytes, final: bool = False) -> None:
        # One pipe's failure (a closed log file, a bug in a sink) must not stop the others'
        # draining, nor its own: a child blocks on a full pipe that nobody reads.
        try:
            stream.feed(data, final)
        except Exception:
            self._failed(stream, "handling output")

    def _failed(self, stream: _Stream, what: str) -> None:
        self.errors += 1
        stream.errors += 1
        if stream.errors == 1:  # one traceback per pipe, then a line at 10, 100, 1000...
            log.exception("output pump: %s of a program failed; its pipe is still drained", what)
        elif math.log10(stream.errors).is_integer():
            log.error("output pump: %s of a program failed (%d times)", what, stream.errors)

    def _close(self, fd: int) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(fd)
        with contextlib.suppress(OSError):
            os.close(fd)

    def _drain_and_close(self, fd: int, stream: _Stream) -> None:
        with contextlib.suppress(OSError):
            while data := os.read(fd, _READ_CHUNK):
                self._feed(stream, data)
        self._feed(stream, b"", final=True)
        self._close(fd)

    def stop(self, timeout: float | None = None) -> None:
        """Read what is left in the pipes, close them and join the thread."""
        with self._lock:
            self._stopping = True
            thread = self._thread
        self._wake()
        if thread is not None:
            thread.join(timeout)
        if thread is None or not thread.is_alive():
            for fd, _ in self._pending:
                os.close(fd)
            self._pending = []
            self._selector.close()
            for fd in (self._wake_read, self._wake_write):
                with contextlib.suppress(OSError):
                    os.close(fd)
