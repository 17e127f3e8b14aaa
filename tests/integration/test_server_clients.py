"""The supervisor server and its clients: serialised actions, read-only, identity, stale state."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from console.actions import ActionResult
from console.server.client import (
    NoServer,
    RemoteSource,
    ServerClient,
    ServerGone,
    ServerRefused,
)
from console.server.protocol import PROTOCOL_VERSION, encode, socket_path
from console.settings import Settings
from tests.server_support import client_of, inprocess_server, need_root_and_nobody
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]


def group_size(client: ServerClient) -> int:
    reply = client.request("status")
    return sum(1 for p in reply["processes"] if p["group"] == "worker")


def test_concurrent_scale_from_two_clients_ends_at_the_exact_count(
    redis_url: str, state_dir: Path
) -> None:
    with inprocess_server(redis_url, state_dir, processes=1) as server:
        clients = [client_of(server), client_of(server)]
        start = threading.Barrier(20)
        results: list[ActionResult] = []

        def press(client: ServerClient) -> None:
            start.wait(10)
            job = client.act("scale", {"delta": 1, "group": None}, wait=30)
            assert job.result is not None, job
            results.append(job.result)

        threads = [threading.Thread(target=press, args=(clients[i % 2],)) for i in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert [r.ok for r in results] == [True] * 20, results
        assert server.runtime.group_size("worker") == 21
        wait_until("21 worker programs", lambda: group_size(clients[0]) == 21, 10)
        for client in clients:
            client.close()


def test_two_attached_sources_see_the_same_snapshots(redis_url: str, state_dir: Path) -> None:
    with inprocess_server(redis_url, state_dir, processes=2) as server:
        settings = server.settings
        sources = [RemoteSource(client_of(server), settings, read_only=False) for _ in range(2)]
        wait_until(
            "both see 2 programs", lambda: all(len(s.poll().processes) == 2 for s in sources), 10
        )
        result = sources[0].scale(1)
        assert result.ok, result
        wait_until("the other sees the scale", lambda: len(sources[1].poll().processes) == 3, 10)
        assert "attached" in (sources[1].attachment or "")
        assert str(os.getpid()) in (sources[1].attachment or "")
        for s in sources:
            s.detach()
        assert not server.stopped.is_set(), "a client leaving must not stop the server"


def test_read_only_client_is_refused_every_action(redis_url: str, state_dir: Path) -> None:
    with inprocess_server(redis_url, state_dir) as server:
        watcher = client_of(server, read_only=True)
        job = watcher.act("restart", {"target": "worker-1"}, wait=5)
        assert job.state == "refused" and "read-only" in job.message, job
        shutdown = ActionResult.from_json(watcher.request("shutdown")["result"])
        assert shutdown.outcome == "refused"
        assert not server.stopping.is_set()
        assert watcher.request("status")["processes"][0]["name"] == "worker-1"
        watcher.close()


def test_unknown_targets_and_actions_are_refused(redis_url: str, state_dir: Path) -> None:
    with inprocess_server(redis_url, state_dir) as server:
        client = client_of(server)
        for action, args in (
            ("restart", {"target": "nothing"}),
            ("scale_to", {"group": "nope", "count": 2}),
            ("explode", {}),
        ):
            job = client.act(action, args, wait=5)
            assert job.state == "refused", (action, job)
        with pytest.raises(ServerRefused, match="no program named 'nothing'"):
            client.request("output", name="nothing")
        client.close()


def test_a_client_of_another_protocol_version_gets_one_clear_line(
    redis_url: str, state_dir: Path
) -> None:
    with inprocess_server(redis_url, state_dir) as server:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(5)
            sock.connect(str(server.path))
            sock.sendall(encode({"op": "hello", "id": 1, "version": 99}))
            reply = json.loads(sock.makefile("rb").readline())
        assert reply["type"] == "error"
        assert f"protocol {PROTOCOL_VERSION}" in reply["message"] and "99" in reply["message"]


def test_socket_is_private_and_a_stale_one_is_replaced(redis_url: str, state_dir: Path) -> None:
    path = socket_path(state_dir)
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()  # the file stays with nobody behind it, as after a crash
    with pytest.raises(NoServer, match="stale socket"):
        ServerClient(state_dir)
    with inprocess_server(redis_url, state_dir) as server:
        assert oct(path.stat().st_mode & 0o777) == "0o600"
        assert oct(state_dir.stat().st_mode & 0o777) == "0o700"
        client = client_of(server)
        assert client.hello_info["pid"] == os.getpid()
        client.close()
    assert not path.exists(), "a server that stopped leaves no socket behind"


SYSTEM_PYTHON = "/usr/bin/python3"


def test_a_client_of_another_uid_is_refused(redis_url: str) -> None:
    need_root_and_nobody()  # fails under CI, skips elsewhere
    code = (
        "import socket, sys\n"
        "s = socket.socket(socket.AF_UNIX)\n"
        "try:\n"
        "    s.connect(sys.argv[1])\n"
        "except OSError as e:\n"
        "    print('denied', e.errno); sys.exit(0)\n"
        's.sendall(b\'{"op":"hello","id":1,"version":2}\\n\')\n'
        "print(s.makefile('rb').readline().decode().strip())\n"
    )
    top = Path(tempfile.mkdtemp(prefix="sc-uid-", dir="/tmp"))  # ancestors nobody can search
    state_dir = top / "state"
    try:
        refused_by_uid(redis_url, state_dir, code)
    finally:
        shutil.rmtree(top, ignore_errors=True)


def refused_by_uid(redis_url: str, state_dir: Path, code: str) -> None:
    with inprocess_server(redis_url, state_dir) as server:
        as_nobody = ["runuser", "-u", "nobody", "--", SYSTEM_PYTHON, "-c", code, str(server.path)]
        closed = subprocess.run(as_nobody, capture_output=True, text=True, timeout=30)
        assert closed.stdout.startswith("denied"), closed  # the 0700 directory keeps it out
        # Open the directory and the socket up: the kernel's peer uid still refuses it.
        modes = [(p, p.stat().st_mode & 0o777) for p in (state_dir.parent, state_dir, server.path)]
        try:
            for p, _ in modes:
                os.chmod(p, 0o777)
            opened = subprocess.run(as_nobody, capture_output=True, text=True, timeout=30)
        finally:
            for p, mode in modes:
                os.chmod(p, mode)
        assert opened.stdout, opened
        reply = json.loads(opened.stdout)
        assert reply["type"] == "error" and "not allowed" in reply["message"], opened
        assert not any(c.uid != os.getuid() for c in server.clients())


def test_remote_source_speaks_for_a_settings_object(redis_url: str, state_dir: Path) -> None:
    with inprocess_server(redis_url, state_dir) as server:
        local = Settings(broker=None, broker_source="embedded", state_dir=state_dir)
        source = RemoteSource(client_of(server), local, read_only=False)
        assert source.settings.broker_source == "test"  # the server's, not the client's guess
        assert source.settings.refresh_interval == pytest.approx(0.2)
        began = time.monotonic()
        data = source.poll()
        assert time.monotonic() - began < 1.0, "the first snapshot comes at once"
        assert data.processes[0].name == "worker-1"
        source.detach()


def test_clients_are_told_why_the_server_went_away(redis_url: str, state_dir: Path) -> None:
    with inprocess_server(redis_url, state_dir) as server:
        watcher = RemoteSource(client_of(server), server.settings, read_only=True)
        operator = client_of(server)
        reply = operator.request("shutdown", timeout=30)
        assert reply["result"]["outcome"] == "done"
        connections = server.clients()
        server.close()  # what serve() does once the loop has ended; the process exits next
        # Everything queued for the clients (the shutdown reply, the goodbye) went out first.
        assert connections and all(c.closed.is_set() for c in connections)
        with pytest.raises(ServerGone, match=r"the server stopped \(shutdown by \w+\)"):
            for _ in range(50):
                watcher.poll()


def test_watched_output_is_pushed_when_it_grows_and_never_asked_again(
    redis_url: str, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with inprocess_server(redis_url, state_dir) as server:
        source = RemoteSource(client_of(server), server.settings, read_only=False)
        assert source.output("worker-1", 500) == []  # asks once: the server now watches it
        asked: list[str] = []
        real = source.client.request

        def spying(op: str, *args: Any, **kwargs: Any) -> Any:
            asked.append(op)
            return real(op, *args, **kwargs)

        monkeypatch.setattr(source.client, "request", spying)
        server.runtime.supervisor._buffers["worker-1"].feed_lines(["one", "two"])
        wait_until("the push", lambda: source.output("worker-1", 500) == ["one", "two"], 10)
        server.runtime.supervisor._buffers["worker-1"].feed_lines(["three"])
        wait_until("the next push", lambda: source.output("worker-1", 500)[-1] == "three", 10)
        assert asked == [], "a watched output is never requested again"
        assert source.output("worker-1", 1) == ["three"]  # another tail length: asked afresh
        assert asked == ["watch"]
        source.detach()
