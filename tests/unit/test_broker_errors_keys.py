"""Reasons for broker errors, and Redis key names checked against kombu's own code."""

from __future__ import annotations

import errno
import socket
import types

import amqp.exceptions
import pytest
import redis.exceptions
from kombu.transport.redis import Channel

from console.broker.depth import KOMBU_PRIORITY_SEP, KOMBU_PRIORITY_STEPS, redis_queue_keys
from console.broker.errors import describe_error

REASONS: list[tuple[BaseException, str]] = [
    (ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"), "connection refused"),
    (
        redis.exceptions.ConnectionError("Error 111 connecting to h:1. Connection refused."),
        "connection refused",
    ),
    (
        redis.exceptions.AuthenticationError("invalid username-password pair"),
        "authentication failed",
    ),
    (
        redis.exceptions.ResponseError("WRONGPASS invalid username-password pair"),
        "authentication failed",
    ),
    (amqp.exceptions.AccessRefused("ACCESS_REFUSED - Login was refused"), "authentication failed"),
    (amqp.exceptions.NotAllowed("vhost x not found"), "virtual host not found or access refused"),
    (socket.gaierror(-2, "Name or service not known"), "name or service not known"),
    (TimeoutError("timed out"), "timed out"),
    (OSError(errno.ETIMEDOUT, "Connection timed out"), "timed out"),
    (redis.exceptions.TimeoutError("Timeout connecting to server"), "timed out"),
    (FileNotFoundError(errno.ENOENT, "No such file or directory"), "socket not found"),
    (
        redis.exceptions.ConnectionError(
            "Error 2 connecting to unix socket: /x. No such file or directory."
        ),
        "socket not found",
    ),
    (ConnectionResetError(errno.ECONNRESET, "reset"), "connection reset"),
    (OSError(errno.EIO, "boom"), "input/output error"),
    (ValueError("pw=hunter2"), "unexpected error (ValueError)"),
]


@pytest.mark.parametrize(("exc", "reason"), REASONS)
def test_reasons(exc: BaseException, reason: str) -> None:
    assert describe_error(exc) == reason


def test_reason_from_cause() -> None:
    try:
        try:
            raise ConnectionRefusedError(errno.ECONNREFUSED, "refused")
        except OSError as inner:
            raise RuntimeError("wrapped") from inner
    except RuntimeError as outer:
        assert describe_error(outer) == "connection refused"


def _kombu_keys(queue: str, steps: list[int], sep: str, prefix: str) -> list[str]:
    """The keys kombu's Channel._size would LLEN, computed by kombu's own methods."""
    fake = types.SimpleNamespace(priority_steps=steps, sep=sep)
    fake.priority = lambda n: Channel.priority(fake, n)  # type: ignore[arg-type]
    keys = [prefix + Channel._q_for_pri(fake, queue, pri) for pri in steps]  # type: ignore[arg-type]
    return list(dict.fromkeys(keys))


@pytest.mark.parametrize(
    ("steps", "sep", "prefix"),
    [
        (list(KOMBU_PRIORITY_STEPS), KOMBU_PRIORITY_SEP, ""),
        (list(KOMBU_PRIORITY_STEPS), KOMBU_PRIORITY_SEP, "sentry:"),
        (list(range(10)), KOMBU_PRIORITY_SEP, ""),
        ([0, 5], ":", "p/"),
        ([2, 4, 8], KOMBU_PRIORITY_SEP, ""),
    ],
)
def test_keys_match_kombu(steps: list[int], sep: str, prefix: str) -> None:
    ours = redis_queue_keys("events", priority_steps=steps, sep=sep, global_keyprefix=prefix)
    assert ours == _kombu_keys("events", steps, sep, prefix)


def test_default_keys() -> None:
    assert redis_queue_keys("celery") == [
        "celery",
        "celery\x06\x163",
        "celery\x06\x166",
        "celery\x06\x169",
    ]
    assert Channel.sep == KOMBU_PRIORITY_SEP
    assert list(Channel.priority_steps) == list(KOMBU_PRIORITY_STEPS)
