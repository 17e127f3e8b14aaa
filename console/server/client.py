"""Clients of the supervisor server: the connection, and the screen's data source over it."""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import itertools
import os
import queue
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from console.actions import ActionResult, Outcome
from console.cluster.models import TaskInfo
from console.jobs import JobView
from console.server.protocol import (
    MAX_LINE,
    MAX_WAIT,
    MAX_WATCHES,
    PROTOCOL_VERSION,
    ProtocolError,
    data_from_json,
    data_updated,
    decode,
    encode,
    from_json,
    socket_candidates,
    socket_path,
)
from console.settings import Settings
from console.snapshot import DashboardData, aged
from console.statedir import StateDirError, check_trusted_dir, peer_uid

REQUEST_TIMEOUT = 10.0
ACTION_WAIT = 10.0
"""Seconds a screen's key waits for its job before saying it is still running."""


class NoServer(Exception):
    """No supervisor server runs for this state directory."""

    def __init__(self, state_dir: Path, detail: str) -> None:
        super().__init__(f"no sentry-console server runs for {state_dir} ({detail})")


class ServerGone(Exception):
    """The server closed the connection (it stopped, or refused this client)."""

    ends_session = True


class ServerRefused(Exception):
    """The server answered a request with an error."""


class ServerClient:
    """One connection to the supervisor server: requests by id, pushes to callbacks."""

    def __init__(self, state_dir: Path, *, connect_timeout: float = 2.0) -> None:
        self.state_dir = state_dir
        self.path = socket_path(state_dir)
        self.on_data: Callable[[dict[str, Any]], None] | None = None
        """Called with the whole snapshot (plain JSON) after each push; a field that did not
        change is the same object as in the call before."""
        self._snapshot: dict[str, Any] = {}
        self.on_line: Callable[[dict[str, Any]], None] | None = None
        self.on_output: Callable[[dict[str, Any]], None] | None = None
        self.hello_info: dict[str, Any] = {}
        self.closed_reason: str | None = None
        self._ids = itertools.count(1)
        self._waiting: dict[int, queue.SimpleQueue[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._closed = threading.Event()
        self._sock = self._connect(connect_timeout)
        self._reader = threading.Thread(target=self._read_loop, name="server-read", daemon=True)
        self._reader.start()

    def _connect(self, timeout: float) -> socket.socket:
        """Connect to the first live socket of this state dir's, after checking who made its
        directory and, once connected, who listens on it: this user, or root."""
        found = [p for p in socket_candidates(self.state_dir) if p.exists()]
        if not found:
            raise NoServer(self.state_dir, "no socket")
        last = "stale socket, no server behind it"
        for path in found:
            try:
                check_trusted_dir(path.parent)
            except StateDirError as exc:
                raise ServerRefused(str(exc)) from None
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            try:
                sock.connect(str(path))
            except OSError as exc:
                sock.close()
                if exc.errno in (errno.ECONNREFUSED, errno.ENOENT):
                    continue
                if exc.errno == errno.EACCES:
                    raise ServerRefused(f"permission denied on {path}") from None
                last = exc.strerror or str(exc)
                continue
            uid = peer_uid(sock)
            if uid not in (os.getuid(), 0):
                sock.close()
                raise ServerRefused(
                    f"the server on {path} runs as uid {uid}, not as you (uid {os.getuid()}) "
                    "or root: refusing to talk to it"
                )
            sock.settimeout(None)
            self.path = path
            return sock
        raise NoServer(self.state_dir, last)

    def hello(self, *, read_only: bool = False, client: str = "ctl") -> dict[str, Any]:
        """Introduce this client; raises ServerRefused on a protocol version mismatch."""
        self.hello_info = self.request("hello", version=PROTOCOL_VERSION, read_only=read_only)
        self.hello_info["client"] = client
        return self.hello_info

    def request(self, op: str, timeout: float | None = REQUEST_TIMEOUT, **fields: Any) -> Any:
        """Send a request and wait for its reply (ServerGone, ServerRefused, TimeoutError)."""
        rid = next(self._ids)
        box: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
        with self._lock:
            if self._closed.is_set():
                raise ServerGone(self.closed_reason or "the server closed the connection")
            self._waiting[rid] = box
        try:
            self._send({"op": op, "id": rid, **fields})
            try:
                reply = box.get(timeout=timeout)
            except queue.Empty:
                raise TimeoutError(f"the server did not answer {op!r} in {timeout:.0f}s") from None
        finally:
            with self._lock:
                self._waiting.pop(rid, None)
        if reply.get("type") == "gone":
            raise ServerGone(reply.get("message") or "the server closed the connection")
        if reply.get("type") == "error":
            raise ServerRefused(str(reply.get("message")))
        return reply

    def act(
        self, action: str, args: dict[str, Any], *, wait: float, key: str | None = None
    ) -> JobView:
        """Ask for an action; the job once it finished, or as it is after ``wait`` seconds."""
        fields: dict[str, Any] = {"action": action, "args": args, "wait": min(wait, MAX_WAIT)}
        if key is not None:
            fields["key"] = key
        reply = self.request("action", timeout=min(wait, MAX_WAIT) + REQUEST_TIMEOUT, **fields)
        return JobView.from_json(reply["job"])

    def job(self, job_id: int, *, wait: float = 0.0) -> JobView:
        """A job by id, once it finished or after ``wait`` seconds."""
        reply = self.request("job", timeout=wait + REQUEST_TIMEOUT, job=job_id, wait=wait)
        return JobView.from_json(reply["job"])

    def _send(self, message: dict[str, Any]) -> None:
        try:
            with self._send_lock:
                self._sock.sendall(encode(message))
        except OSError:
            raise ServerGone(self.closed_reason or "the server closed the connection") from None

    def _read_loop(self) -> None:
        reader = self._sock.makefile("rb")
        try:
            for line in iter(lambda: reader.readline(MAX_LINE), b""):
                try:
                    message = decode(line)
                except ProtocolError:
                    continue
                self._dispatch(message)
        except (OSError, ValueError):
            pass
        finally:
            self._gone(self.closed_reason or "the server closed the connection")

    def _dispatch(self, message: dict[str, Any]) -> None:
        rid = message.get("id")
        kind = message.get("type")
        if rid is not None:
            with self._lock:
                box = self._waiting.get(rid)
            if box is not None:
                box.put(message)
        elif kind == "data" and self.on_data is not None:
            self._snapshot = {**self._snapshot, **message["data"]}  # only what changed is sent
            self.on_data(self._snapshot)
        elif kind == "output" and self.on_output is not None:
            self.on_output(message)
        elif kind in ("line", "end") and self.on_line is not None:
            self.on_line(message)
        elif kind in ("error", "bye"):  # refused before any request, or the server stopped
            self.closed_reason = str(message.get("message"))

    def _gone(self, reason: str) -> None:
        with self._lock:
            self.closed_reason = self.closed_reason or reason
            self._closed.set()
            waiting = list(self._waiting.values())
        for box in waiting:
            box.put({"type": "gone", "message": self.closed_reason})
        if self.on_line is not None:
            self.on_line({"type": "end", "message": self.closed_reason})
        if self.on_data is not None:
            with contextlib.suppress(Exception):
                self.on_data({})

    @property
    def closed(self) -> bool:
        """True once the connection ended."""
        return self._closed.is_set()

    def close(self) -> None:
        """Leave (the server and its programs go on)."""
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        self._reader.join(2.0)


def attachment_line(hello: dict[str, Any]) -> str:
    """'attached: server 4242 since 10:02' (or since the date, after a day) for the status bar."""
    started = datetime.fromtimestamp(float(hello.get("started_at", 0)))
    fmt = "%H:%M" if time.time() - started.timestamp() < 20 * 3600 else "%Y-%m-%d %H:%M"
    return f"attached: server {hello.get('pid')} since {started.strftime(fmt)}"


class RemoteSource:
    """The screen's :class:`ConsoleSource`, answered by a supervisor server over its socket."""

    def __init__(self, client: ServerClient, settings: Settings, *, read_only: bool) -> None:
        self.client = client
        self.read_only = read_only
        hello = client.hello_info
        self.settings = dataclasses.replace(
            settings,
            broker_source=str(hello.get("broker_source", settings.broker_source)),
            refresh_interval=float(hello.get("refresh_interval", settings.refresh_interval)),
        )
        self.server_pid = int(hello.get("pid", 0))
        self.attachment: str | None = attachment_line(hello)
        self._latest: DashboardData | None = None
        self._raw: dict[str, Any] = {}
        self._fresh = threading.Condition()
        self._seq = 0
        self._seen = 0
        self._watched: OrderedDict[tuple[str, int | None, bool], list[str]] = OrderedDict()
        client.on_output = self._take_output
        client.on_data = self._take
        client.request("subscribe")

    def _take(self, raw: dict[str, Any]) -> None:
        # Only the fields the server sent again are decoded (the others are the same objects).
        latest, before = self._latest, self._raw
        if not raw:
            data = None
        elif latest is None:
            data = data_from_json(raw)
        else:
            data = data_updated(latest, {k: v for k, v in raw.items() if before.get(k) is not v})
        with self._fresh:
            if data is not None:
                self._latest, self._raw = data, raw
            self._seq += 1
            self._fresh.notify_all()

    def poll(self) -> DashboardData:
        """The next snapshot the server pushes, or (when a refresh passed without one: nothing
        but time changed) the last one aged to now. Waits for the first; ServerGone when the
        server left."""
        interval = self.settings.refresh_interval
        first = self._latest is None
        deadline = time.monotonic() + (max(interval * 3, 5.0) if first else interval * 1.2)
        with self._fresh:
            while self._seq == self._seen and not self.client.closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._fresh.wait(left)
            pushed = self._seq != self._seen
            self._seen = self._seq
            if self.client.closed:
                raise ServerGone(self.client.closed_reason or "the server stopped")
            if self._latest is None:
                raise TimeoutError("the server sent no snapshot")
            return aged(self._latest, self._latest.taken_at if pushed else time.time())

    def output(self, name: str, last: int | None = None, stamps: bool = False) -> list[str]:
        """The tail of a program's output (empty when the program is gone).

        The first call for a (program, tail length, stamps) asks the server to watch it; from
        then on the server pushes the tail whenever the program writes, and this answers from
        that copy.
        """
        key = (name, last, stamps)
        with self._fresh:
            known = self._watched.get(key)
        if known is not None:
            return list(known)
        try:
            reply = self.client.request("watch", timeout=3.0, name=name, last=last, stamps=stamps)
        except (ServerRefused, TimeoutError):
            return []
        lines = list(reply.get("lines", []))
        with self._fresh:
            self._watched[key] = lines
            while len(self._watched) > MAX_WATCHES:  # the server drops the same, oldest first
                self._watched.popitem(last=False)
        return list(lines)

    def _take_output(self, message: dict[str, Any]) -> None:
        key = (str(message.get("name")), message.get("last"), bool(message.get("stamps")))
        with self._fresh:
            if message.get("gone"):
                self._watched.pop(key, None)
            elif key in self._watched:
                self._watched[key] = list(message.get("lines", []))

    def task(self, uuid: str) -> TaskInfo | None:
        """A task's detail from the server."""
        try:
            reply = self.client.request("task", timeout=3.0, uuid=uuid)
        except (ServerRefused, TimeoutError):
            return None
        task = from_json(TaskInfo, reply.get("task"))
        return task if isinstance(task, TaskInfo) else None

    def _act(self, action: str, wait: float = ACTION_WAIT, **args: Any) -> ActionResult:
        """Ask for an action as a job and wait up to ``wait`` seconds for its result; a job
        still running then is said to be (its result shows among the screen's jobs)."""
        try:
            job = self.client.act(action, args, wait=wait)
        except (ServerRefused, ServerGone, TimeoutError) as exc:
            return ActionResult.failed(str(exc))
        if job.result is not None:
            return job.result
        return ActionResult(Outcome.DONE, f"still running as job {job.id}: {job.action}")

    def restart(self, name: str) -> ActionResult:
        """Restart one program."""
        return self._act("restart", target=name)

    def toggle(self, name: str) -> ActionResult:
        """Stop a running program or start a stopped one."""
        return self._act("toggle", name=name)

    def toggle_cron(self) -> ActionResult:
        """Run or stop the cron."""
        return self._act("toggle_cron")

    def scale(self, delta: int, group_name: str | None = None) -> ActionResult:
        """Add or remove worker processes."""
        return self._act("scale", delta=delta, group=group_name)

    def rolling_restart(self, group_name: str | None = None) -> ActionResult:
        """Restart a group's workers one at a time (waits for the whole restart)."""
        return self._act("rolling_restart", wait=MAX_WAIT, group=group_name)

    def revoke(self, uuid: str, terminate: bool = False) -> ActionResult:
        """Revoke a task (and kill it with ``terminate``)."""
        return self._act("revoke", uuid=uuid, terminate=terminate)

    def purge(self, queue: str) -> ActionResult:
        """Empty a queue."""
        return self._act("purge", queue=queue)

    def pool(self, hostname: str, delta: int) -> ActionResult:
        """Grow or shrink a worker's pool."""
        return self._act("pool", hostname=hostname, delta=delta)

    def pool_restart(self, hostname: str) -> ActionResult:
        """Replace a worker's pool processes."""
        return self._act("pool_restart", hostname=hostname)

    def consume(self, hostname: str, queue: str, on: bool = True) -> ActionResult:
        """Make a worker start (``on``) or stop consuming a queue."""
        return self._act("consume", hostname=hostname, queue=queue, on=on)

    def shutdown_worker(self, hostname: str) -> ActionResult:
        """Warm shutdown of one worker."""
        return self._act("shutdown_worker", hostname=hostname)

    def shutdown(self) -> None:
        """Stop every program warmly, then the server (waits until they are down)."""
        with contextlib.suppress(ServerGone):
            self.client.request("shutdown", timeout=None)

    def shutdown_now(self) -> None:
        """Stop every program without waiting for tasks, then the server."""
        with contextlib.suppress(ServerGone):
            self.client.request("shutdown", timeout=None, now=True)

    def detach(self) -> None:
        """Leave everything running and close the connection."""
        self.client.close()
