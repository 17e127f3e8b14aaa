"""systemd's notify protocol (sd_notify): one datagram per message on $NOTIFY_SOCKET.

Written here rather than taken from a library: the protocol is one sendto() of ``KEY=value``
lines to a unix datagram socket, and the maintained bindings (python-systemd) need libsystemd
and a compiler, which a container or a plain pip install may lack.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time


class SystemdNotifier:
    """Sends READY / STATUS / STOPPING / WATCHDOG when the service manager asks for them."""

    def __init__(self, address: str | None, watchdog_usec: int | None = None) -> None:
        self.address = address
        self.watchdog_every = watchdog_usec / 2e6 if watchdog_usec else None
        self._sock: socket.socket | None = None
        self._last_status: str | None = None
        self._last_watchdog = 0.0
        self.ready_sent = False
        if address:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._sock.setblocking(False)

    @classmethod
    def from_env(cls) -> SystemdNotifier:
        """A notifier for $NOTIFY_SOCKET (inert when unset); the variable is not inherited."""
        address = os.environ.pop("NOTIFY_SOCKET", None)
        usec = os.environ.pop("WATCHDOG_USEC", None)
        watchdog_pid = os.environ.pop("WATCHDOG_PID", None)
        if watchdog_pid and watchdog_pid != str(os.getpid()):
            usec = None
        return cls(address, int(usec) if usec and usec.isdigit() else None)

    @property
    def enabled(self) -> bool:
        """True under a service manager that listens."""
        return self._sock is not None

    def send(self, message: str) -> None:
        """Send one datagram (errors are ignored: the service must not die of its manager)."""
        if self._sock is None or not self.address:
            return
        target = self.address
        if target.startswith("@"):
            target = "\0" + target[1:]
        with contextlib.suppress(OSError):
            self._sock.sendto(message.encode(), target)

    def ready(self, status: str) -> None:
        """READY=1 with a status line, once."""
        if not self.ready_sent:
            self.ready_sent = True
            self._last_status = status
            self.send(f"READY=1\nSTATUS={status}")

    def status(self, status: str) -> None:
        """STATUS=..., only when it changed."""
        if status != self._last_status:
            self._last_status = status
            self.send(f"STATUS={status}")

    def stopping(self) -> None:
        """STOPPING=1."""
        self.send("STOPPING=1")

    def watchdog(self) -> None:
        """WATCHDOG=1 when half the watchdog interval has passed since the last one."""
        if self.watchdog_every is None:
            return
        now = time.monotonic()
        if now - self._last_watchdog >= self.watchdog_every:
            self._last_watchdog = now
            self.send("WATCHDOG=1")

    def close(self) -> None:
        """Close the socket."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
