"""The supervisor server: hosts one :class:`ConsoleRuntime` and serves it on a private unix socket.

One thread polls the runtime and pushes each snapshot, encoded once, to every subscribed client,
so N attached screens cost the broker what one costs. Each client has a reader thread (its
requests) and a writer thread (its replies and pushes; a slow client only loses snapshots that a
newer one replaced). Actions are serialised: two operators pressing ``+`` together give +2.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from console import statedir
from console.server.connection import Connection
from console.server.handlers import RequestHandlers
from console.server.protocol import (
    MAX_WATCHES,
    PROTOCOL_VERSION,
    SOCKET_NAME,
    Request,
    encode,
    screen_key,
    snapshot_fields,
    socket_path,
)
from console.snapshot import DashboardData

if TYPE_CHECKING:
    from console.runtime import ConsoleRuntime

log = logging.getLogger("sentry_console.server")

KEEPALIVE = 5.0
"""Seconds without a change after which subscribers are sent the time alone: the server lives."""
STARTUP_WINDOW = 3.0
STARTUP_POLL = 0.25
FOLLOW_EVERY = 0.2
"""Seconds between looks at a followed program's output."""
MAX_FOLLOWS = 4
"""``tail -f`` streams one client may have at once."""
MAX_CLIENTS = 64
"""Connections served at once; more are refused with one line."""
CLOSE_GRACE = 2.0
"""Seconds :meth:`SupervisorServer.close` waits for its last words to reach the clients (the
process exits right after, and a reply still queued would be lost with it)."""


class ServerError(Exception):
    """The server cannot start (socket in use, path too long, ...)."""


def _refuse(sock: socket.socket, why: str) -> None:
    """Tell a refused client why, then close once it has read it (unread input would reset)."""
    with contextlib.suppress(OSError):
        sock.settimeout(1.0)
        sock.sendall(encode({"type": "error", "message": why}))
        sock.shutdown(socket.SHUT_WR)
        while sock.recv(4096):
            pass
    sock.close()


class SupervisorServer:
    """Serves a running :class:`ConsoleRuntime` to TUIs and ``ctl`` commands."""

    def __init__(self, runtime: ConsoleRuntime, *, interval: float | None = None) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.path = socket_path(self.settings.state_dir)
        self.interval = interval or self.settings.refresh_interval
        self.started_at = time.time()
        self.latest: DashboardData | None = None
        self.polls = 0
        """Snapshots taken."""
        self.pushes = 0
        """Snapshots that changed in more than time, so were pushed to subscribers."""
        self.stopping = threading.Event()
        self.stopped = threading.Event()
        self.stop_reason = "the server stopped"
        self.on_poll: Callable[[DashboardData], None] | None = None
        self.on_stopping: Callable[[], None] | None = None
        self._listener: socket.socket | None = None
        self._clients: set[Connection] = set()
        self._clients_lock = threading.Lock()
        self._shutdown_lock = threading.Lock()
        # Woken by actions, and by the runtime itself (a broker alarm): push at once.
        self._wake: threading.Event = getattr(runtime, "wakeup", None) or threading.Event()
        self._fields: dict[str, bytes] = {}
        """The newest snapshot, each field encoded (a new subscriber gets them all)."""
        self._sent_key: dict[str, bytes] = {}
        self._pushed_at = 0.0
        """What subscribers were last sent, but for what time alone changes (see screen_key)."""
        self._handlers = RequestHandlers(self)

    # socket -------------------------------------------------------------------------------
    def listen(self) -> None:
        """Bind the private socket, replacing a stale one (the caller holds the state lock)."""
        try:
            statedir.prepare_socket_dir(self.path, self.settings.state_dir)
        except statedir.StateDirError as exc:
            raise ServerError(str(exc)) from None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # only a crashed server leaves it: the live one holds the lock
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(str(self.path))
            os.chmod(self.path, 0o600)
            sock.listen(socket.SOMAXCONN)
        except OSError as exc:
            sock.close()
            raise ServerError(f"cannot listen on {self.path}: {exc.strerror}") from None
        self._listener = sock
        record = statedir.record_path(self.settings.state_dir, SOCKET_NAME)
        record.write_text(f"{self.path}\n")
        threading.Thread(target=self._accept_loop, name="accept", daemon=True).start()
        log.info("listening on %s (pid %d)", self.path, os.getpid())

    def _accept_loop(self) -> None:
        assert self._listener is not None
        allowed = {os.getuid(), 0}
        while not self.stopped.is_set():
            try:
                sock, _ = self._listener.accept()
            except OSError as exc:
                if exc.errno in (errno.EBADF, errno.EINVAL) or self.stopped.is_set():
                    return
                time.sleep(0.05)
                continue
            uid = statedir.peer_uid(sock)
            why = None
            if uid not in allowed:
                log.warning("refused a client of uid %d (only uid %d and root)", uid, os.getuid())
                why = f"uid {uid} not allowed"
            conn = Connection(self, sock, uid)
            with self._clients_lock:
                if why is None and len(self._clients) >= MAX_CLIENTS:
                    why = f"{MAX_CLIENTS} clients are attached already"
                if why is None:
                    self._clients.add(conn)
            if why is not None:
                threading.Thread(target=_refuse, args=(sock, why), daemon=True).start()
                continue
            conn.start()

    def forget(self, conn: Connection) -> None:
        """A client went away."""
        with self._clients_lock:
            self._clients.discard(conn)

    def clients(self) -> list[Connection]:
        """The attached clients."""
        with self._clients_lock:
            return list(self._clients)

    # requests -----------------------------------------------------------------------------
    def handle(self, conn: Connection, request: Request) -> bool:
        """Answer one request; False ends the connection."""
        return self._handlers.handle(conn, request)

    def subscribe(self, conn: Connection) -> None:
        """Start pushing snapshots to a client, the newest one first."""
        conn.subscribed = True
        if self._fields:
            conn.push_data(self._fields)

    def hello(self) -> dict[str, Any]:
        """What a client learns on connecting."""
        return {
            "type": "hello",
            "version": PROTOCOL_VERSION,
            "pid": os.getpid(),
            "started_at": self.started_at,
            "state_dir": str(self.settings.state_dir),
            "broker_source": self.settings.broker_source,
            "refresh_interval": self.interval,
        }

    # the loop -----------------------------------------------------------------------------
    def serve_forever(self) -> None:
        """Poll and push until stopped (call on the main thread; returns after shutdown)."""
        began = time.monotonic()
        while not self.stopped.is_set():
            started = time.monotonic()
            try:
                self.publish(self.runtime.poll())
            except Exception:
                log.exception("poll failed")
            early = started - began < STARTUP_WINDOW
            wait = min(self.interval, STARTUP_POLL) if early else self.interval
            self._wake.wait(max(wait - (time.monotonic() - started), 0.05))
            self._wake.clear()

    def publish(self, data: DashboardData) -> None:
        """Hand what changed in a snapshot to every subscribed client, encoded once (after any
        new output); nothing when only time passed (the clients age their copy themselves)."""
        self.polls += 1
        fields = snapshot_fields(data)
        key = screen_key(data, fields)
        changed = {k: v for k, v in fields.items() if k in key and key[k] != self._sent_key.get(k)}
        if changed or data.taken_at - self._pushed_at >= KEEPALIVE:
            changed["taken_at"] = fields["taken_at"]
            self.pushes += 1
            self._pushed_at = data.taken_at
        self.latest, self._fields, self._sent_key = data, fields, key
        for conn in self.clients():
            if conn.subscribed:
                self._push_output(conn)
                if changed:
                    conn.push_data(changed)
        if self.on_poll is not None:
            self.on_poll(data)

    def watch(
        self, conn: Connection, name: str, last: int | None, stamps: bool = False
    ) -> dict[str, Any]:
        """Start pushing a program's output tail to a client whenever it grows; its lines now."""
        mark = self.runtime.supervisor.output_mark(name)  # KeyError: no such program
        lines = self.runtime.output(name, last, stamps)
        conn.watches[(name, last, stamps)] = mark
        while len(conn.watches) > MAX_WATCHES:
            conn.watches.popitem(last=False)
        return {"type": "output", "name": name, "last": last, "stamps": stamps, "lines": lines}

    def _push_output(self, conn: Connection) -> None:
        for (name, last, stamps), seen in list(conn.watches.items()):
            key = {"name": name, "last": last, "stamps": stamps}
            try:
                mark = self.runtime.supervisor.output_mark(name)
                if mark == seen:
                    continue
                lines = self.runtime.output(name, last, stamps)
            except KeyError:
                conn.watches.pop((name, last, stamps), None)
                conn.send_line({"type": "output", **key, "gone": True})
                continue
            conn.watches[(name, last, stamps)] = mark
            conn.send_line({"type": "output", **key, "lines": lines})

    def shutdown(self, wait: bool = True, reason: str = "shut down", end: bool = True) -> None:
        """Stop every program (warm when ``wait``), then (with ``end``) :meth:`serve_forever`.

        A hard stop asked during a warm one escalates it at once (it does not wait behind it).
        """
        with self._shutdown_lock:
            first = not self.stopping.is_set()
            if first:
                self.stop_reason = f"the server stopped ({reason})"
                self.stopping.set()
                if self.on_stopping is not None:
                    self.on_stopping()
            log.info("stopping every program (%s)", "warm" if wait else "now")
        if wait:
            self.runtime.shutdown()
        else:
            self.runtime.shutdown_now()
        if end:
            self.end()

    def end(self) -> None:
        """Let :meth:`serve_forever` return (the programs are down)."""
        self.stopped.set()
        self._wake.set()

    def close(self) -> None:
        """Close the socket and every client connection."""
        self.stopped.set()
        self._wake.set()
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            statedir.record_path(self.settings.state_dir, SOCKET_NAME).unlink(missing_ok=True)
        clients = self.clients()
        for conn in clients:
            conn.send({"type": "bye", "message": self.stop_reason})
            conn.finish()
        deadline = time.monotonic() + CLOSE_GRACE
        for conn in clients:  # a client that stopped reading costs at most the grace
            conn.closed.wait(max(0.0, deadline - time.monotonic()))

    def follow(self, conn: Connection, name: str, cursor: tuple[int, int]) -> bool:
        """Push a program's new output lines to a client until it goes away (False: it
        follows :data:`MAX_FOLLOWS` already)."""
        if conn.follows >= MAX_FOLLOWS:
            return False
        conn.follows += 1

        def run() -> None:
            at = cursor
            while not conn.closed.wait(FOLLOW_EVERY):
                try:
                    at, lines = self.runtime.supervisor.output_since(name, at)
                except KeyError:
                    conn.send_line({"type": "end", "message": f"{name} is gone"})
                    return
                for line in lines:
                    conn.send_line({"type": "line", "line": line})

        threading.Thread(target=run, name=f"follow-{name}", daemon=True).start()
        return True
