"""Turn broker client exceptions into short reasons that never carry a password."""

from __future__ import annotations

import errno
import os
import socket
import ssl
import sys


class BrokerUnavailable(RuntimeError):
    """The broker could not be reached; the message is one password-free line."""

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        """The short reason from :func:`describe_error`, when a client exception caused it."""


#: Reasons meaning the broker stopped answering at all, rather than refusing one command.
SILENT_REASONS = frozenset(
    {
        "timed out",
        "connection refused",
        "connection reset",
        "connection lost",
        "host unreachable",
        "network unreachable",
        "socket not found",
    }
)


_ERRNO_REASONS = {
    errno.ECONNREFUSED: "connection refused",
    errno.ETIMEDOUT: "timed out",
    errno.ENOENT: "socket not found",
    errno.EACCES: "permission denied",
    errno.ECONNRESET: "connection reset",
    errno.EPIPE: "connection lost",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
    errno.EADDRNOTAVAIL: "address not available",
}

# Fragments of client library messages (which hold no secrets) mapped to reasons, in order.
_TEXT_REASONS = (
    ("connection refused", "connection refused"),
    ("timed out", "timed out"),
    ("timeout", "timed out"),
    ("name or service not known", "name or service not known"),
    ("nodename nor servname", "name or service not known"),
    ("temporary failure in name resolution", "name or service not known"),
    ("no such file or directory", "socket not found"),
    ("permission denied", "permission denied"),
    ("wrongpass", "authentication failed"),
    ("noauth", "authentication failed"),
    ("invalid username-password", "authentication failed"),
    ("invalid password", "authentication failed"),
    ("connection reset", "connection reset"),
    ("broken pipe", "connection lost"),
    ("closed by server", "connection lost"),
    ("server unexpectedly closed", "connection lost"),
    ("socket closed", "connection lost"),
)


def _is_library_error(exc: BaseException, module: str, *names: str) -> bool:
    """True when ``exc`` is one of the named exception classes of a client library's module.

    Looked up in :data:`sys.modules`, never imported: an exception of a library that was never
    loaded cannot have been raised, so describing an error costs no import of redis-py or amqp.
    """
    loaded = sys.modules.get(module)
    if loaded is None:
        return False
    return isinstance(exc, tuple(getattr(loaded, name) for name in names))


def describe_error(exc: BaseException, _depth: int = 0) -> str:
    """A short, password-free reason such as "connection refused" or "authentication failed"."""
    if _is_library_error(exc, "redis.exceptions", "AuthenticationError") or _is_library_error(
        exc, "amqp.exceptions", "AccessRefused"
    ):
        return "authentication failed"
    if _is_library_error(exc, "amqp.exceptions", "NotAllowed"):
        return "virtual host not found or access refused"
    if isinstance(exc, socket.gaierror):
        return "name or service not known"
    if isinstance(exc, ssl.SSLError):
        return "TLS error"
    if isinstance(exc, TimeoutError) or _is_library_error(exc, "redis.exceptions", "TimeoutError"):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, OSError) and exc.errno in _ERRNO_REASONS:
        return _ERRNO_REASONS[exc.errno]
    text = " ".join(str(arg) for arg in exc.args if isinstance(arg, str | int)).lower()
    if "auth" in text and ("fail" in text or "refused" in text or "required" in text):
        return "authentication failed"
    for fragment, reason in _TEXT_REASONS:
        if fragment in text:
            return reason
    cause = exc.__cause__ or exc.__context__
    if cause is not None and cause is not exc and _depth < 5:
        nested = describe_error(cause, _depth + 1)
        if not nested.startswith("unexpected error"):
            return nested
    if isinstance(exc, OSError) and exc.errno:
        return os_reason(exc.errno)
    return f"unexpected error ({type(exc).__name__})"


def os_reason(code: int) -> str:
    """The system's text for an errno, lower-cased ("no such file or directory")."""
    return os.strerror(code).lower()
