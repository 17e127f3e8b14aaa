"""The control socket against hostile and impatient clients, on a real server and real sockets.

Each test checks what a client got back, and that the server still answers afterwards, ran no
action nobody asked for, and holds no thread or file descriptor for a client that left.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from console.server.connection import HELLO_TIMEOUT
from console.server.protocol import MAX_REQUEST, PROTOCOL_VERSION, encode
from console.server.server import SupervisorServer
from tests.server_support import client_of, inprocess_server
from tests.waiting import wait_until

HELLO = encode({"op": "hello", "id": "h", "version": PROTOCOL_VERSION})


@pytest.fixture
def server(redis_url: str, state_dir: Path) -> Iterator[SupervisorServer]:
    with inprocess_server(redis_url, state_dir, processes=1) as running:
        yield running


def connect(server: SupervisorServer, timeout: float = 5.0) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.connect(str(server.path))
    return sock


def read_all(sock: socket.socket) -> list[dict[str, Any]]:
    """Every message until the server closes the connection."""
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return [json.loads(line) for line in data.splitlines() if line.strip()]


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def settled(server: SupervisorServer, threads: int, files: int) -> None:
    """The server answers, and is back to the threads and fds it had before."""
    client = client_of(server)
    assert client.request("status")["processes"][0]["name"] == "worker-1"
    client.close()
    wait_until("no client left", lambda: not server.clients(), 10)
    wait_until(
        f"threads back to {threads} (now {threading.active_count()})",
        lambda: threading.active_count() <= threads,
        15,
    )
    wait_until(f"fds back to {files} (now {fds()})", lambda: fds() <= files, 15)


def baseline(server: SupervisorServer) -> tuple[int, int]:
    """Threads and fds once the server has settled (its broker connections open lazily)."""
    settled_client = client_of(server)  # one round trip first: every lazy thread is up
    settled_client.request("status")
    settled_client.close()
    wait_until("no client left", lambda: not server.clients(), 10)
    seen: list[tuple[int, int]] = []

    def steady() -> bool:
        seen.append((threading.active_count(), fds()))
        return len(seen) >= 10 and len(set(seen[-10:])) == 1

    wait_until("steady thread and fd counts", steady, 30, step=0.2)
    return seen[-1]


def test_a_deeply_nested_line_gets_one_error_and_the_server_lives(
    server: SupervisorServer,
) -> None:
    threads, files = baseline(server)
    with connect(server) as sock:
        sock.sendall(HELLO + b"[" * 60_000 + b"\n")
        sock.shutdown(socket.SHUT_WR)
        replies = read_all(sock)
    assert [r["type"] for r in replies] == ["hello", "error"], replies
    assert "bad request" in replies[1]["message"]
    settled(server, threads, files)


def test_an_over_long_line_is_refused_whole_and_its_tail_never_runs(
    server: SupervisorServer,
) -> None:
    threads, files = baseline(server)
    tail = encode({"op": "action", "id": 2, "action": "scale", "args": {"delta": 1}})
    with connect(server) as sock:
        sock.sendall(HELLO)
        # One line longer than the limit whose last bytes are a valid request of their own.
        sock.sendall(b'{"op":"status","pad":"' + b"x" * MAX_REQUEST + b'"}' + tail)
        replies = read_all(sock)
    assert [r["type"] for r in replies] == ["hello", "error"], replies
    assert f"over {MAX_REQUEST} bytes" in replies[1]["message"]
    assert server.runtime.jobs.recent() == [], "the tail of the line ran as a request"
    assert server.runtime.group_size("worker") == 1
    settled(server, threads, files)


def test_nothing_is_served_before_hello(server: SupervisorServer) -> None:
    with connect(server) as sock:
        sock.sendall(encode({"op": "action", "id": 1, "action": "scale", "args": {"delta": 1}}))
        replies = read_all(sock)
    assert len(replies) == 1 and replies[0]["type"] == "error", replies
    assert "hello" in replies[0]["message"] and replies[0]["id"] == 1
    assert server.runtime.jobs.recent() == []


def test_a_half_closed_client_gets_its_replies(server: SupervisorServer) -> None:
    for n in range(5):
        with connect(server) as sock:
            request = {"op": "action", "id": n, "action": "scale", "args": {"delta": 1}}
            sock.sendall(HELLO + encode({**request, "wait": 10}))
            sock.shutdown(socket.SHUT_WR)  # what `nc -N` and most scripts do
            replies = read_all(sock)
        assert [r["type"] for r in replies] == ["hello", "job"], (n, replies)
        assert replies[1]["job"]["state"] == "done", replies
    assert server.runtime.group_size("worker") == 6


def test_a_request_without_a_newline_before_the_half_close_is_answered(
    server: SupervisorServer,
) -> None:
    with connect(server) as sock:
        sock.sendall(HELLO + b'{"op":"jobs","id":7}')
        sock.shutdown(socket.SHUT_WR)
        replies = read_all(sock)
    assert [r["type"] for r in replies] == ["hello", "jobs"], replies


def test_tail_zero_means_none(server: SupervisorServer) -> None:
    server.runtime.supervisor._buffers["worker-1"].feed_lines(["one", "two"])
    client = client_of(server)
    assert client.request("tail", name="worker-1", lines=0)["lines"] == []
    assert client.request("tail", name="worker-1", lines=1)["lines"] == ["two"]
    client.close()


def test_an_unread_follower_costs_two_log_lines_not_one_per_line(
    server: SupervisorServer,
) -> None:
    log_file = server.runtime.log_file
    with connect(server) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(HELLO + encode({"op": "tail", "id": 1, "name": "worker-1", "follow": True}))
        buffer = server.runtime.supervisor._buffers["worker-1"]
        conn = wait_until(
            "the follower", lambda: next((c for c in server.clients() if c.follows), None), 10
        )

        def chatty() -> bool:  # 2,000 more lines at each look, never read
            buffer.feed_lines([f"line {i} " + "x" * 60 for i in range(2000)])
            return conn._dropped > 5000 or conn.closed.is_set()

        wait_until("the follower to drop lines", chatty, 30, step=0.05)
    text = log_file.read_text()
    assert text.count("reads too slowly") <= 1, text[-2000:]
    assert text.count("dropped a client") <= 1


def test_follows_per_client_are_bounded(server: SupervisorServer) -> None:
    client = client_of(server)
    for _ in range(4):
        client.request("tail", name="worker-1", follow=True)
    with pytest.raises(Exception, match="follows as many outputs"):
        client.request("tail", name="worker-1", follow=True)
    client.close()


HOSTILE: list[bytes] = [
    b"\n",
    b"{}\n",
    b"[]\n",
    b"null\n",
    b"42\n",
    b'"hello"\n',
    b"{\n",
    b'{"op":\n',
    b'{"op":"hello"\n',
    b'{"op":"hello","version":"2"}\n',
    b'{"op":"hello","version":99}\n',
    b'{"op":"hello","version":2.0}\n',
    b'{"op":"hello","version":null}\n',
    b'{"op":"hello","version":2,"read_only":"no"}\n',
    b'{"op":"hello","version":2,"extra":1}\n',
    b'{"op":"nope","id":1}\n',
    b'{"op":null}\n',
    b'{"op":["hello"]}\n',
    b'{"op":{"op":"hello"}}\n',
    b"\xff\xfe\xfd\n",
    b"\x00" * 100 + b"\n",
    b'{"op":"hello\xff","version":2}\n',
    b'{"op":"hello","version":2}' + b"\x00\n",
    b'{"op":"status","id":1}\n',
    b'{"op":"shutdown","id":1}\n',
    b'{"op":"shutdown","now":true}\n',
    b'{"op":"action","action":"scale","args":{"delta":1}}\n',
    b"[" * 50_000 + b"\n",
    b"{" * 50_000 + b"\n",
    b'{"a":' * 20_000 + b"1" + b"}" * 20_000 + b"\n",
    b'{"op":"hello","version":2,"id":' + b"9" * 5000 + b"}\n",
    b'{"op":"hello","version":' + b"9" * 5000 + b"}\n",
    b"x" * (MAX_REQUEST + 10) + b"\n",
    b'{"op":"hello","version":2}' + b" " * (MAX_REQUEST + 10) + b"\n",
    b"\r\n\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS hello
    b'{"op":"hello","version":2}{"op":"hello","version":2}\n',
    b'{"op":"hello","version":2,"id":{"nested":[1,2,3]}}\n',
    b'{"op":"hello","version":-1}\n',
    b'{"op":"hello","version":1e400}\n',
    b'{"op":"hello","version":NaN}\n',
    b'{"op":"hello","version":2,"read_only":true',  # truncated, then closed
    b'{"op":"hello","version":2,"id":"\\ud800"}\n',
    b"\xef\xbb\xbf" + b'{"op":"hello","version":2}\n',  # a BOM
    b'{"op":"HELLO","version":2}\n',
    b'{"op":"hello ","version":2}\n',
    b'{"OP":"hello","version":2}\n',
    b'{"op":"hello","op":"shutdown","version":2}\n',
    b"true\nfalse\n",
    b"\n" * 10_000,
]
"""Inputs sent as a connection's first bytes (some valid hellos to show the rest is refused)."""

AFTER_HELLO: list[dict[str, Any] | bytes] = [
    {"op": "action", "id": 1, "action": "explode", "args": {}},
    {"op": "action", "id": 1, "action": "scale", "args": {"delta": "1"}},
    {"op": "action", "id": 1, "action": "scale", "args": {"delta": [1]}},
    {"op": "action", "id": 1, "action": "scale", "args": {"delta": True}},
    {"op": "action", "id": 1, "action": "scale_to", "args": {"count": -5}},
    {"op": "action", "id": 1, "action": "restart", "args": {"target": ""}},
    {"op": "action", "id": 1, "action": "restart", "args": {}},
    {"op": "action", "id": 1, "action": "purge", "args": {"queue": None}},
    {"op": "action", "id": 1, "action": "scale", "args": {"delta": 1}, "key": ""},
    {"op": "action", "id": 1, "action": "scale", "args": {"delta": 1}, "wait": -1},
    {"op": "action", "id": 1, "action": "scale", "args": {"delta": 1}, "wait": 1e9},
    {"op": "tail", "id": 1, "name": "worker-1", "lines": -1},
    {"op": "tail", "id": 1, "name": "x" * 1000},
    {"op": "job", "id": 1, "job": 0},
    {"op": "job", "id": 1, "job": "1"},
    {"op": "output", "id": 1, "name": "nothing"},
    {"op": "watch", "id": 1, "name": "worker-1", "last": 10**12},
    {"op": "hello", "id": 1, "version": PROTOCOL_VERSION, "read_only": 1},
    b'{"op":"status","id":1,"jobs":"all"}\n',
    b"[" * 60_000 + b"\n",
]
"""Requests after a good hello that must be refused without acting (or answered harmlessly)."""


def test_a_corpus_of_hostile_inputs_runs_no_action_and_leaks_nothing(
    server: SupervisorServer,
) -> None:
    threads, files = baseline(server)
    assert len(HOSTILE) + len(AFTER_HELLO) >= 50
    for raw in HOSTILE:
        with connect(server) as sock:
            sock.sendall(raw)
            sock.shutdown(socket.SHUT_WR)
            read_all(sock)  # whatever it says, it must close: recv would time out otherwise
    for request in AFTER_HELLO:
        line = request if isinstance(request, bytes) else encode(request)
        with connect(server) as sock:
            sock.sendall(HELLO + line)
            sock.shutdown(socket.SHUT_WR)
            replies = read_all(sock)
        assert replies[0]["type"] == "hello", replies
        for reply in replies[1:]:
            assert reply["type"] in ("error", "output", "job"), (request, reply)
            if reply["type"] == "job":
                assert reply["job"]["state"] == "refused", (request, reply)
    assert all(j.state == "refused" for j in server.runtime.jobs.recent(200))
    assert server.runtime.group_size("worker") == 1, "an action ran that nobody asked for"
    assert not server.stopping.is_set()
    settled(server, threads, files)


def test_slow_silent_and_many_clients_at_once(
    server: SupervisorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads, files = baseline(server)
    # A slowloris: one byte at a time, never a whole hello; dropped after the hello timeout.
    slow = connect(server, timeout=HELLO_TIMEOUT + 10)
    began = time.monotonic()
    for byte in b'{"op":"hel':
        slow.send(bytes([byte]))
    replies = read_all(slow)  # returns only once the server closes the connection
    assert all(r["type"] == "error" for r in replies), replies
    assert time.monotonic() - began >= HELLO_TIMEOUT - 1
    slow.close()
    # 200 connections at once: some served, the rest refused with one line; none hangs.
    socks = []
    for _ in range(200):
        socks.append(connect(server, timeout=20))
    for sock in socks:
        sock.sendall(HELLO)
    answered = refused = 0
    for sock in socks:
        line = sock.makefile("rb").readline()
        reply = json.loads(line)
        if reply["type"] == "hello":
            answered += 1
        else:
            assert "clients are attached already" in reply["message"], reply
            refused += 1
    assert answered >= 1 and answered + refused == 200
    for sock in socks:
        sock.close()
    assert server.runtime.jobs.recent() == []
    settled(server, threads, files)
