"""A program's output log: the standard library's rotation for raw bytes, every file 0600."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from console.privatelog import PrivateRotatingFileHandler
from console.supervision.output import RotatingLogFile


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A umask that would make files world-readable: the log must not rely on it."""
    before = os.umask(0)
    try:
        yield
    finally:
        os.umask(before)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_it_is_the_standard_handler() -> None:
    assert issubclass(RotatingLogFile, PrivateRotatingFileHandler)


def test_bytes_are_kept_as_the_program_wrote_them(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "worker-1.log"
    log = RotatingLogFile(path, maxbytes=0, backups=3)
    raw = b"caf\xc3\xa9 \xff\xfe not utf-8\r\nhalf a li"
    log.write(raw)
    log.write(b"ne\n")
    log.close()
    assert path.read_bytes() == raw + b"ne\n"
    assert mode(path.parent) == 0o700


def test_rotation_keeps_backups_and_every_file_private(tmp_path: Path, open_umask: None) -> None:
    path = tmp_path / "worker-1.log"
    log = RotatingLogFile(path, maxbytes=10, backups=2)
    for chunk in (b"aaaaaa\n", b"bbbbbb\n", b"cccccc\n", b"dddddd\n"):
        log.write(chunk)  # each would pass 10 bytes with the one before: a rotation each
    log.close()
    files = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert files == {
        "worker-1.log": b"dddddd\n",
        "worker-1.log.1": b"cccccc\n",
        "worker-1.log.2": b"bbbbbb\n",
    }
    assert all(mode(tmp_path / name) == 0o600 for name in files)


def test_appends_to_what_is_there_and_counts_it(tmp_path: Path) -> None:
    path = tmp_path / "cron.log"
    path.write_bytes(b"12345678\n")
    log = RotatingLogFile(path, maxbytes=12, backups=1)
    log.write(b"abcd\n")  # 9 + 5 > 12: rotates first
    log.close()
    assert (path.read_bytes(), (tmp_path / "cron.log.1").read_bytes()) == (b"abcd\n", b"12345678\n")


def test_no_backups_starts_the_file_again(tmp_path: Path, open_umask: None) -> None:
    path = tmp_path / "worker-2.log"
    log = RotatingLogFile(path, maxbytes=10, backups=0)
    log.write(b"first-line\n")
    log.write(b"second\n")
    log.write(b"third\n")
    log.close()
    assert [p.name for p in tmp_path.iterdir()] == ["worker-2.log"]
    assert path.read_bytes() == b"third\n"
    assert mode(path) == 0o600


def test_a_closed_log_refuses_writes_and_is_not_reopened(tmp_path: Path) -> None:
    path = tmp_path / "worker-3.log"
    log = RotatingLogFile(path, maxbytes=4, backups=1)
    log.write(b"12345\n")
    log.close()
    with pytest.raises(ValueError):
        log.write(b"more\n")
    assert not (tmp_path / "worker-3.log.1").exists()
