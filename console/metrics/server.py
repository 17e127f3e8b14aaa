"""The metrics listener: ``/metrics`` (text or OpenMetrics by Accept) and ``/healthz``.

A stdlib threaded HTTP server in a daemon thread; nothing it serves blocks on the broker, since
every figure comes from the console's last refresh.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from console.metrics.address import MetricsAddress, cannot_listen
from console.metrics.health import Health

INDEX = b"sentry-console metrics: /metrics (Prometheus), /healthz\n"


class _Listener(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False


class _Listener6(_Listener):
    address_family = socket.AF_INET6


Scrape = Callable[[str], tuple[list[bytes], str]]
"""From an ``Accept`` header to the ``/metrics`` body (in chunks) and its content type."""


def _handler(scrape: Scrape, health: Callable[[], Health]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        """Answers ``/metrics``, ``/healthz`` and ``/``; anything else is 404."""

        server_version = "sentry-console"
        protocol_version = "HTTP/1.0"

        def do_GET(self) -> None:
            """Answer one GET."""
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                chunks, content_type = scrape(self.headers.get("Accept") or "")
                self._reply(200, chunks, content_type)
            elif path == "/healthz":
                verdict = health()
                self._reply(verdict.status, [(verdict.reason + "\n").encode()], "text/plain")
            elif path == "/":
                self._reply(200, [INDEX], "text/plain")
            else:
                self._reply(404, [b"not found\n"], "text/plain")

        def _reply(self, status: int, chunks: list[bytes], content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(sum(map(len, chunks))))
            self.end_headers()
            for chunk in chunks:
                self.wfile.write(chunk)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: a scrape every few seconds is not news."""

    return Handler


class MetricsServer:
    """Serves a scrape and a health verdict on ``address`` from a daemon thread."""

    def __init__(
        self, address: MetricsAddress, scrape: Scrape, health: Callable[[], Health]
    ) -> None:
        self.address = address
        self._handler = _handler(scrape, health)
        self._httpd: _Listener | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port listened on (the real one when 0 was asked for)."""
        assert self._httpd is not None
        return int(self._httpd.server_address[1])

    def start(self) -> None:
        """Bind and serve; a bad address or a port in use raises one clear line."""
        cls = _Listener6 if self.address.family == socket.AF_INET6 else _Listener
        try:
            self._httpd = cls((self.address.host, self.address.port), self._handler)
        except OSError as exc:
            raise cannot_listen(self.address, exc) from None
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.5}, name="metrics-http"
        )
        self._thread.daemon = True
        self._thread.start()

    def close(self) -> None:
        """Stop serving and release the port; safe to call twice."""
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)
