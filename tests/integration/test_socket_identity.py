"""Who is on the other end of the control socket: the server refuses a socket directory someone
else made, and the client refuses a server or a directory that is not its user's or root's."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from console import statedir
from console.consolelog import close_console_log, log, setup_console_log
from console.server.client import ServerClient, ServerRefused
from console.server.protocol import SOCKET_NAME, socket_path
from console.server.server import ServerError
from tests.server_support import SYSTEM_PYTHON, client_of, inprocess_server, need_root_and_nobody
from tests.waiting import wait_until


@pytest.fixture
def short_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The per-user /tmp directory for too-long paths, private to this test."""
    path = Path(f"/tmp/sc-short-{uuid.uuid4().hex[:8]}")
    monkeypatch.setattr(statedir, "shared_short_dir", lambda: path)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def long_state_dir(base: Path) -> Path:
    deep = base / ("d" * 60) / ("e" * 60) / "state"
    assert len(os.fsencode(deep / SOCKET_NAME)) > statedir.SUN_PATH_MAX
    return deep


def test_a_fallback_directory_made_by_someone_else_is_refused_by_server_and_client(
    redis_url: str, tmp_path: Path, short_dir: Path
) -> None:
    nobody = need_root_and_nobody()
    state = long_state_dir(tmp_path)
    path = socket_path(state)
    assert path.parent == short_dir
    short_dir.mkdir(mode=0o777)  # made first by another local user
    os.chown(short_dir, nobody, nobody)
    with (
        pytest.raises(ServerError, match=rf"belongs to uid {nobody}, not to you"),
        inprocess_server(redis_url, state),
    ):
        pass
    # A socket planted there by that user: the client refuses before sending anything.
    with (
        listening_as_nobody(path),
        pytest.raises(ServerRefused, match=rf"belongs to uid {nobody}.*refusing"),
    ):
        ServerClient(state)


@contextlib.contextmanager
def listening_as_nobody(path: Path) -> Iterator[subprocess.Popen[str]]:
    """A listener on ``path`` run by nobody (it prints what its first client sent), killed
    with its runuser by process group at the end."""
    proc = subprocess.Popen(
        ["runuser", "-u", "nobody", "--", SYSTEM_PYTHON, "-c", LISTEN, str(path)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        wait_until("the listener's socket", path.exists, 10)
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


LISTEN = (
    "import socket, sys, os\n"
    "s = socket.socket(socket.AF_UNIX)\n"
    "s.bind(sys.argv[1]); os.chmod(sys.argv[1], 0o777); s.listen(4)\n"
    "c, _ = s.accept()\n"
    "c.settimeout(5)\n"
    "print('got', c.recv(100), flush=True)\n"
)


def test_a_server_of_another_user_is_refused_by_the_client(tmp_path: Path) -> None:
    need_root_and_nobody()
    top = Path(tempfile.mkdtemp(prefix="sc-peer-", dir="/tmp"))
    try:
        os.chmod(top, 0o711)  # nobody may pass through to the open directory below
        state = top / "state"
        state.mkdir(mode=0o777)  # root's directory, open to all: only the peer check is left
        os.chmod(state, 0o777)
        path = state / SOCKET_NAME
        with listening_as_nobody(path) as impostor:
            with pytest.raises(ServerRefused, match=r"runs as uid \d+, not as you.*refusing"):
                ServerClient(state)
            out, _ = impostor.communicate(timeout=10)
        assert out.strip() == "got b''", "the client sent something to the impostor"
    finally:
        shutil.rmtree(top, ignore_errors=True)


def test_the_socket_goes_to_the_session_runtime_dir_and_is_found_there(
    redis_url: str, state_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = Path(tempfile.mkdtemp(prefix="sc-run-", dir="/tmp"))  # short, as /run/user/N is
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(shutil.rmtree, runtime, True)
        server = cleanup.enter_context(inprocess_server(redis_url, state_dir))
        assert server.path.parent == runtime / "sentry-console"
        assert oct(server.path.parent.stat().st_mode & 0o777) == "0o700"
        client = client_of(server)
        assert client.request("status")["processes"]
        client.close()
        # A client of a session without one (cron, systemd, sudo) still finds it.
        monkeypatch.delenv("XDG_RUNTIME_DIR")
        other = ServerClient(state_dir)
        assert other.path == server.path
        other.close()


def test_the_log_is_owner_only_after_every_rotation(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        path = setup_console_log(tmp_path, max_bytes=2000, backups=2)
        for n in range(200):
            log.info("line %d %s", n, "x" * 50)
        rotated = sorted(tmp_path.glob("console.log*"))
        assert len(rotated) == 3, rotated
        for file in rotated:
            assert oct(file.stat().st_mode & 0o777) == "0o600", file
        assert path.exists()
    finally:
        os.umask(old)
        close_console_log()


def test_statedir_refuses_a_link_in_place_of_its_directory(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir()
    link = tmp_path / "link"
    link.symlink_to(target)
    with pytest.raises(statedir.StateDirError, match="not a directory"):
        statedir.ensure_private_dir(link)
    sock = socket.socket(socket.AF_UNIX)
    sock.close()
