"""One client of the supervisor server: its reader, its writer, and the limits it lives within.

Nothing a client sends is trusted. A request line is at most :data:`MAX_REQUEST` bytes (a longer
one is refused whole, never split, and the client dropped); it must decode to one of the
protocol's typed requests; the first one must be ``hello`` with this server's version, within
:data:`HELLO_TIMEOUT`. A client that half-closes its end still gets every reply it asked for
before the connection closes. Output pushed to a slow reader is dropped, counted and noted in
the log twice (when dropping starts and when it ends), never once per line.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import threading
from collections import OrderedDict, deque
from typing import Any, Protocol

from console.server.protocol import (
    MAX_REQUEST,
    Hello,
    ProtocolError,
    Request,
    data_line,
    decode_request,
    encode,
    request_id,
)

log = logging.getLogger("sentry_console.server")

HELLO_TIMEOUT = 10.0
"""Seconds a new connection has to say hello (a silent or trickling one is dropped)."""
SEND_TIMEOUT = 5.0
"""A client that takes no bytes for this long is dropped."""
MAX_QUEUED = 10_000
"""Pushed lines queued for one client; past this, new ones are dropped until it catches up."""
MAX_REPLIES = 1_000
"""Replies queued for one client that does not read them: past this it is dropped."""
MAX_INFLIGHT = 32
"""Requests of one client being answered at once (long waits included)."""
DRAIN_LIMIT = 4 * 1024 * 1024
"""Bytes read and discarded after refusing a line, so the refusal is read, not reset away."""


def _timeval(seconds: float) -> bytes:
    return struct.pack("ll", int(seconds), int((seconds % 1) * 1_000_000))


class ConnectionOwner(Protocol):
    """What a connection needs of the server that accepted it (the server is one; this module
    does not import it, so the server's modules import in one direction only)."""

    def handle(self, conn: Connection, request: Request) -> bool:
        """Answer one request; False ends the connection."""
        ...

    def forget(self, conn: Connection) -> None:
        """The client went away."""
        ...


class Connection:
    """One attached client: its socket, its outbox, and whether it wants snapshots."""

    def __init__(self, server: ConnectionOwner, sock: socket.socket, uid: int) -> None:
        self.server = server
        self.sock = sock
        self.uid = uid
        self.read_only = False
        self.greeted = False
        self.subscribed = False
        self.follows = 0
        self.closed = threading.Event()
        self._finishing = False
        self.watches: OrderedDict[tuple[str, int | None, bool], int] = OrderedDict()
        """Program outputs this client shows, (name, lines, stamps) -> the mark it has seen."""
        self._outbox: deque[bytes] = deque()
        self._replies = 0
        self._data: dict[str, bytes] | None = None
        self._ready = threading.Condition()
        self._inflight = 0
        self._eof = False
        self._dropped = 0
        self._reader_done = threading.Event()

    def start(self) -> None:
        """Serve this client on two threads of its own."""
        threading.Thread(target=self._read_loop, name="client-read", daemon=True).start()
        threading.Thread(target=self._write_loop, name="client-write", daemon=True).start()

    # what the server sends ----------------------------------------------------------------
    def send(self, message: dict[str, Any]) -> None:
        """Queue a reply (a client that leaves this many unread is dropped)."""
        with self._ready:
            if self._replies >= MAX_REPLIES:
                if not self._finishing:
                    log.warning("dropped a client that stopped reading its replies")
                self._finishing = True
            else:
                self._replies += 1
                self._outbox.append(encode(message))
            self._ready.notify()

    def send_line(self, message: dict[str, Any]) -> None:
        """Queue a pushed line; dropped (and counted) while the client is too far behind."""
        with self._ready:
            if len(self._outbox) >= MAX_QUEUED:
                if not self._dropped:
                    log.warning("a client reads too slowly: dropping its followed lines")
                self._dropped += 1
                return
            if self._dropped:
                log.info("a client caught up: %d followed lines were dropped", self._dropped)
                note = f"[sentry-console: {self._dropped} lines dropped, the reader was too slow]"
                self._outbox.append(encode({"type": "line", "line": note}))
                self._dropped = 0
            self._outbox.append(encode(message))
            self._ready.notify()

    def push_data(self, fields: dict[str, bytes]) -> None:
        """Offer the newest snapshot's changed fields; merged into any not yet sent (newer
        values win), never queued behind them: a slow client skips snapshots, loses no field."""
        with self._ready:
            self._data = fields if self._data is None else {**self._data, **fields}
            self._ready.notify()

    def finish(self) -> None:
        """Close once everything queued so far has been sent."""
        with self._ready:
            self._finishing = True
            self._ready.notify()

    def close(self) -> None:
        """Drop the client (its programs are untouched)."""
        if self.closed.is_set():
            return
        self.closed.set()
        with self._ready:
            self._ready.notify()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.server.forget(self)

    # requests in flight -------------------------------------------------------------------
    def begin(self) -> bool:
        """Count a request being answered; False when the client has too many already."""
        with self._ready:
            if self._inflight >= MAX_INFLIGHT:
                return False
            self._inflight += 1
            return True

    def end(self) -> None:
        """A request was answered (its reply queued); after a half-close, the last one closes."""
        with self._ready:
            self._inflight -= 1
            last = self._eof and self._inflight == 0
        if last:
            self.finish()

    # the threads --------------------------------------------------------------------------
    def _write_loop(self) -> None:
        # A send timeout only (a socket timeout would also end an idle client's reads).
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, _timeval(SEND_TIMEOUT))
        try:
            while not self.closed.is_set():
                with self._ready:
                    while not (self._outbox or self._data or self._finishing):
                        if self.closed.is_set():
                            return
                        self._ready.wait()
                    batch = list(self._outbox)
                    last = self._finishing
                    self._outbox.clear()
                    self._replies = 0
                    if self._data is not None:
                        batch.append(data_line(self._data))
                        self._data = None
                if batch:
                    self.sock.sendall(b"".join(batch))
                if last:
                    # Let the client read it all before the close (unread input would reset).
                    self.sock.shutdown(socket.SHUT_WR)
                    self._reader_done.wait(1.0)
                    return
        except OSError:
            pass
        finally:
            self.close()
            with contextlib.suppress(OSError):
                self.sock.close()

    def _read_loop(self) -> None:
        try:
            self._serve_requests()
        except OSError:  # reset, or silent past the hello timeout
            self.close()
        finally:
            self._reader_done.set()

    def _serve_requests(self) -> None:
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, _timeval(HELLO_TIMEOUT))
        reader = self.sock.makefile("rb")
        while not self.closed.is_set():
            line = reader.readline(MAX_REQUEST + 1)
            if not line:
                break
            if len(line) > MAX_REQUEST:
                self.send({"type": "error", "message": f"request over {MAX_REQUEST} bytes"})
                log.warning("dropped a client that sent a line over %d bytes", MAX_REQUEST)
                self._drain(reader)
                return
            if not line.strip():
                continue
            try:
                request = decode_request(line)
            except ProtocolError as exc:
                self.send({"id": request_id(line), "type": "error", "message": str(exc)})
                if self.greeted:
                    continue
                self.finish()  # nothing is served before a hello
                return
            if not self._take(request):
                self.finish()
                return
        with self._ready:  # half-closed (or gone): answer what is in flight, then close
            self._eof = True
            idle = self._inflight == 0
        if idle:
            self.finish()

    def _take(self, request: Request) -> bool:
        if not self.greeted and not isinstance(request, Hello):
            why = "say hello first: nothing is served before a hello with the protocol version"
            self.send({"id": request.id, "type": "error", "message": why})
            return False
        if isinstance(request, Hello):
            if not self.server.handle(self, request):
                return False
            self.greeted = True
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, _timeval(0))
            return True
        if not self.begin():
            why = f"over {MAX_INFLIGHT} requests of this client are being answered: wait for one"
            self.send({"id": request.id, "type": "error", "message": why})
            return True
        return self.server.handle(self, request)

    def _drain(self, reader: Any) -> None:
        """Read and discard what the client still sends (briefly), then let the writer close."""
        self.finish()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, _timeval(1.0))
        read = 0
        with contextlib.suppress(OSError):
            while read < DRAIN_LIMIT:
                chunk = reader.read1(65536)
                if not chunk:
                    break
                read += len(chunk)
