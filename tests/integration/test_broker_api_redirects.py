"""The management API client never carries its credentials along a redirect."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from console.broker.rabbit_api import RabbitManagementAPI
from console.broker.urls import parse_broker_url


class Recorded(HTTPServer):
    """A loopback HTTP server that remembers the Authorization header of every request."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.seen: list[tuple[str, str | None]] = []
        self.redirect_to = ""

    @property
    def base(self) -> str:
        """The server's base URL."""
        return f"http://127.0.0.1:{self.server_address[1]}"


class Redirects(BaseHTTPRequestHandler):
    """Answers every GET with a 302 to the server's ``redirect_to``."""

    server: Recorded

    def do_GET(self) -> None:
        self.server.seen.append((self.path, self.headers.get("Authorization")))
        self.send_response(302)
        self.send_header("Location", self.server.redirect_to + self.path)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


class Answers(Redirects):
    """Answers every GET with an empty JSON list."""

    def do_GET(self) -> None:
        self.server.seen.append((self.path, self.headers.get("Authorization")))
        body = b"[]"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[Recorded]:
    """Run a server in a thread for the test; shut it down afterwards."""
    server = Recorded(handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def elsewhere() -> Iterator[Recorded]:
    """Where the redirect points: another origin, which must never see the password."""
    yield from serve(Answers)


@pytest.fixture
def redirecting(elsewhere: Recorded) -> Iterator[Recorded]:
    """The configured API address, which redirects every request to ``elsewhere``."""
    for server in serve(Redirects):
        server.redirect_to = elsewhere.base
        yield server


def test_a_redirect_is_not_followed_with_credentials(
    redirecting: Recorded, elsewhere: Recorded
) -> None:
    url = parse_broker_url("amqp://guest:s3cret@127.0.0.1:5672/sentry")
    api = RabbitManagementAPI(url, redirecting.base, timeout=2.0)
    api.refresh()
    assert redirecting.seen and redirecting.seen[0][1] is not None, "the API itself gets them"
    assert elsewhere.seen == [], "the redirect's target was asked (with the password)"
    assert api.error is not None and "redirect" in api.error
    assert "s3cret" not in api.error
    assert "s3cret" not in api.capacity(["celery"]).notes[0]


def test_a_direct_answer_still_reads(elsewhere: Recorded) -> None:
    url = parse_broker_url("amqp://guest:s3cret@127.0.0.1:5672/sentry")
    api = RabbitManagementAPI(url, elsewhere.base, timeout=2.0)
    api.refresh()
    assert api.error is None
    assert elsewhere.seen and elsewhere.seen[0][1] is not None
