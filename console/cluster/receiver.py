"""Celery event receiver: a thread that feeds a ClusterState and survives broker outages."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from celery import Celery
from kombu.message import Message

from console.cluster.errors import ON_CONNECT, UNDECODABLE, ErrorCounts
from console.cluster.redis_events import RedisEventStream, supports
from console.cluster.state import ClusterState

HEARTBEAT_CHECK_EVERY = 1.0
#: After a read that emptied the socket, the Redis reader waits this long before the next one,
#: so a steady trickle of events is taken in batches of ~50 ms instead of one wake-up per
#: message (a few hundred wake-ups a second under load, each contending for the GIL).
READ_COALESCE_SECONDS = 0.05

log = logging.getLogger("sentry_console.cluster.events")

#: Celery's routing keys are the event type with ``.`` for ``-`` (``worker.heartbeat``,
#: ``task.multi``): the binding of each event mode, as a topic pattern.
BINDINGS = {"all": "#", "workers": "worker.#"}


def describe(exc: BaseException) -> str:
    """One short line for an exception, for ``down: <reason>``."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text and text[0] else type(exc).__name__


class EventReceiverThread:
    """Consumes Celery events on its own connection; reconnects with 1, 2, 4 ... 10 s backoff."""

    def __init__(
        self,
        app: Celery,
        state: ClusterState,
        *,
        on_connect: Callable[[], None] | None = None,
        max_backoff: float = 10.0,
        drain_timeout: float = 1.0,
        lean: bool = True,
        errors: ErrorCounts | None = None,
        events: str = "all",
    ) -> None:
        self._app = app
        self._state = state
        self._on_connect = on_connect
        self.max_backoff = max_backoff
        self.drain_timeout = drain_timeout
        self.lean = lean  # the raw pub/sub reader on Redis; kombu's consumer elsewhere
        self.errors = errors if errors is not None else ErrorCounts()
        self.binding = BINDINGS[events]  # the broker filters: unbound events never arrive
        self.status = "connecting"
        self.reconnects = 0
        self._stop = threading.Event()
        self._nudge = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the receiver thread (once)."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="cluster-events", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the thread to stop and wait at most ``timeout`` seconds for it."""
        self._stop.set()
        self._nudge.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def wake(self) -> None:
        """Cut a reconnect backoff short (the broker is known to be back)."""
        self._nudge.set()

    @property
    def alive(self) -> bool:
        """Whether the receiver thread is running."""
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        delay = 1.0
        while not self._stop.is_set():
            self.status = "connecting"
            listened = False
            try:
                listened = self._consume()
            except Exception as exc:
                if self._stop.is_set():
                    break
                if self.status != f"down: {describe(exc)}":
                    log.warning("event stream from the broker down: %s", describe(exc))
                self.status = f"down: {describe(exc)}"
            else:
                if self._stop.is_set():
                    break
            if listened:
                delay = 1.0
            self.reconnects += 1
            self._nudge.wait(delay)
            self._nudge.clear()
            if self._stop.is_set():
                break
            delay = min(delay * 2, self.max_backoff)
        self.status = "down: stopped"

    def _consume(self) -> bool:
        """Consume until stopped or the connection fails; True once it was listening."""
        conn = self._app.connection_for_read()
        listening = False
        try:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0.5, timeout=5)
            if self.lean and supports(conn):
                exchange = self._app.conf.event_exchange
                stream = RedisEventStream(
                    conn, exchange, self._on_body, self._on_rejected, binding=self.binding
                )
                try:
                    stream.open(self.drain_timeout)
                    listening = self._ready()
                    self._follow(stream)
                finally:
                    stream.close()
            else:
                receiver = self._app.events.Receiver(
                    conn, handlers={"*": self._state.apply}, routing_key=self.binding
                )
                consumer = conn.Consumer(
                    queues=[receiver.queue],
                    callbacks=[self._on_message],
                    no_ack=True,
                    accept=receiver.accept,
                    on_decode_error=self._on_decode_error,
                )
                with consumer:
                    listening = self._ready()
                    self._drain(conn)
        except Exception:
            if listening and self._stop.is_set():
                return True
            raise
        finally:
            with contextlib.suppress(Exception):
                conn.release()
        return listening

    def _ready(self) -> bool:
        if self._on_connect is not None:
            try:
                self._on_connect()
            except Exception as exc:  # enabling events is best effort; the poll thread asks again
                self.errors.record(ON_CONNECT, describe(exc))
        if self.status != "listening":
            log.info("event stream from the broker connected")
        self.status = "listening"
        return True

    def _follow(self, stream: RedisEventStream) -> None:
        while not self._stop.is_set():
            try:
                got = stream.read()
            except TimeoutError:
                continue
            if got and stream.caught_up:
                self._stop.wait(READ_COALESCE_SECONDS)

    def _drain(self, conn: Any) -> None:
        next_check = time.monotonic() + HEARTBEAT_CHECK_EVERY
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                conn.drain_events(timeout=self.drain_timeout)
            now = time.monotonic()
            if now >= next_check:
                conn.heartbeat_check()
                next_check = now + HEARTBEAT_CHECK_EVERY

    def _on_message(self, body: Any, message: Message) -> None:
        self._on_body(body)

    def _on_decode_error(self, message: Message, exc: Exception) -> None:
        self.errors.record(UNDECODABLE, describe(exc))

    def _on_rejected(self, count: int) -> None:
        self.errors.record(UNDECODABLE, "not a JSON event message", count)

    def _on_body(self, body: Any) -> None:
        if isinstance(body, list):  # workers send buffered task events as one list
            self._state.apply_many(body)
        elif isinstance(body, dict):
            self._state.apply(body)
        else:
            self.errors.record(UNDECODABLE, f"a {type(body).__name__} body, not an event")
