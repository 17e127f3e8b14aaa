"""Where the metrics listener binds: ``[HOST:]PORT`` parsed and checked, loopback unless asked."""

from __future__ import annotations

import errno
import ipaddress
import socket
from dataclasses import dataclass

from console.settings import SettingsError

DEFAULT_PORT = 9818
"""The documented fixed port of ``/metrics`` (celery-exporter's 9808 stays free beside it)."""
DEFAULT_HOST = "127.0.0.1"
DEFAULT_ADDRESS = f"{DEFAULT_HOST}:{DEFAULT_PORT}"
"""What ``--metrics`` given alone listens on."""
HOSTNAME_MODES = ("host", "node", "generic")
"""How the ``hostname`` label is filled: the host part of the node name (as celery-exporter
does), the whole node name, or ``generic`` on every task series (bounded on autoscaled fleets)."""


class MetricsAddressError(SettingsError):
    """A metrics address that cannot be used, described in one line."""


@dataclass(frozen=True)
class MetricsAddress:
    """A checked place to listen on."""

    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def family(self) -> socket.AddressFamily:
        """The socket family the host needs."""
        return socket.AF_INET6 if ":" in self.host else socket.AF_INET


def parse_address(value: str, source: str = "--metrics") -> MetricsAddress:
    """``PORT``, ``HOST:PORT`` or ``[V6]:PORT``; the host defaults to 127.0.0.1."""
    text = value.strip()
    if not text:
        raise MetricsAddressError(f"{source}: give [HOST:]PORT, e.g. 127.0.0.1:{DEFAULT_PORT}")
    host, port_text = DEFAULT_HOST, text
    if text.startswith("["):
        inside, sep, rest = text[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise MetricsAddressError(f"{source}: {value!r} is not [HOST]:PORT")
        host, port_text = inside, rest[1:]
    elif ":" in text:
        host, _, port_text = text.rpartition(":")
        if ":" in host:
            raise MetricsAddressError(f"{source}: write an IPv6 address as [{host}]:PORT")
        host = host or DEFAULT_HOST
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise MetricsAddressError(
            f"{source}: port must be a number from 1 to 65535, not {port_text!r}"
        )
    return MetricsAddress(host, int(port_text))


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) is a loopback address."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def checked_address(value: str, *, public: bool, source: str = "--metrics") -> MetricsAddress:
    """The parsed address; a non-loopback one only when ``public`` says so."""
    address = parse_address(value, source)
    if not public and not is_loopback(address.host):
        raise MetricsAddressError(
            f"{source}: {address.host} is not a loopback address; metrics bind only to "
            "127.0.0.1 or ::1 unless --metrics-public (or CONSOLE_METRICS_PUBLIC = True) says so"
        )
    if address.host == "localhost":
        address = MetricsAddress(DEFAULT_HOST, address.port)
    if public and not is_loopback(address.host):
        try:
            ipaddress.ip_address(address.host)
        except ValueError:
            raise MetricsAddressError(
                f"{source}: {address.host!r} is not an IP address (give the address to bind)"
            ) from None
    return address


def ensure_bindable(address: MetricsAddress) -> None:
    """Fail now, in one line, if ``address`` cannot be listened on (before anything starts)."""
    with socket.socket(address.family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the listener does
        try:
            probe.bind((address.host, address.port))
        except OSError as exc:
            raise cannot_listen(address, exc) from None


def cannot_listen(address: MetricsAddress, exc: OSError) -> MetricsAddressError:
    """The one line for a bind that failed: the address and why, in words."""
    if exc.errno == errno.EADDRINUSE:
        why = "the port is already in use"
    elif exc.errno == errno.EADDRNOTAVAIL:
        why = "no interface of this host has that address"
    elif exc.errno == errno.EACCES:
        why = "permission denied (ports below 1024 need privileges)"
    elif isinstance(exc, socket.gaierror):
        why = "not an address"
    else:
        why = exc.strerror or type(exc).__name__
    return MetricsAddressError(f"metrics: cannot listen on {address}: {why}")
