"""Hosts as network namespaces joined by veth pairs to one bridge; cut, heal, tear down.

Every name carries the run's random suffix (``sc<hex>``), so two runs on one machine never meet
and :meth:`Network.leftovers` can tell exactly what this run left. The bridge in the root
namespace has no address: hosts reach each other only through addresses inside their namespaces.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import random
import secrets
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field

IP_TIMEOUT = 20.0
#: Linux limits interface names to 15 characters.
IFNAMSIZ = 15


class NetnsUnavailable(Exception):
    """Namespaces cannot be made here; the message says why."""


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``ip ARGS``; CalledProcessError (with its stderr) on failure when ``check``."""
    done = subprocess.run(
        ["ip", *args], capture_output=True, text=True, timeout=IP_TIMEOUT, check=False
    )
    if check and done.returncode != 0:
        raise subprocess.CalledProcessError(done.returncode, done.args, done.stdout, done.stderr)
    return done


def check_support(suffix: str) -> None:
    """Raise NetnsUnavailable unless this process can make namespaces, veth pairs and bridges."""
    if os.geteuid() != 0:
        raise NetnsUnavailable("network namespaces need root")
    for tool in ("ip", "unshare"):
        if shutil.which(tool) is None:
            raise NetnsUnavailable(f"`{tool}` is not installed")
    probe = f"sc{suffix}-probe"
    made = ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        raise NetnsUnavailable(f"`ip netns add` fails: {made.stderr.strip()}")
    ip("netns", "del", probe, check=False)
    link = f"sc{suffix}probe"[:IFNAMSIZ]
    made = ip("link", "add", link, "type", "bridge", check=False)
    if made.returncode != 0:
        raise NetnsUnavailable(f"`ip link add type bridge` fails: {made.stderr.strip()}")
    ip("link", "del", link, check=False)


def pick_subnet() -> str:
    """A private ``10.X.Y`` /24 prefix that no address or route of the root namespace uses."""
    shown = ip("-4", "addr").stdout + ip("-4", "route").stdout
    taken = [ipaddress.ip_network(w, strict=False) for w in shown.split() if "/" in w]
    taken += [ipaddress.ip_network(w + "/32") for w in shown.split() if _is_address(w)]
    rng = random.SystemRandom()
    for _ in range(200):
        prefix = f"10.{rng.randrange(1, 255)}.{rng.randrange(0, 255)}"
        net = ipaddress.ip_network(prefix + ".0/24")
        if not any(net.overlaps(other) for other in taken):
            return prefix
    raise NetnsUnavailable("no free 10.x.y.0/24 subnet")


def _is_address(word: str) -> bool:
    try:
        ipaddress.IPv4Address(word)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Host:
    """One host: a network namespace with one address, plugged into the bridge by ``link``."""

    name: str
    """Its hostname (what ``socket.gethostname()`` says inside, so in Celery node names)."""
    netns: str
    address: str
    link: str
    """The root namespace's end of the host's veth pair (down: the host is cut off)."""


@dataclass
class Network:
    """The bridge and the hosts of one run."""

    suffix: str = field(default_factory=lambda: secrets.token_hex(3))
    hosts: dict[str, Host] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.prefix = f"sc{self.suffix}"
        self.bridge = f"{self.prefix}br"
        self.subnet = ""
        self._links: list[str] = []
        self._netns: list[str] = []

    def start(self) -> None:
        """Pick a subnet and make the bridge (no address), up."""
        self.subnet = pick_subnet()
        ip("link", "add", self.bridge, "type", "bridge")
        self._links.append(self.bridge)
        ip("link", "set", self.bridge, "up")

    def add_host(self, name: str) -> Host:
        """A namespace named after ``name``, its veth pair on the bridge, an address, lo up."""
        n = len(self.hosts) + 1
        host = Host(name, f"{self.prefix}-{name}", f"{self.subnet}.{n + 1}", f"{self.prefix}r{n}")
        inner = f"{self.prefix}n{n}"
        assert len(host.link) <= IFNAMSIZ and len(inner) <= IFNAMSIZ
        ip("netns", "add", host.netns)
        self._netns.append(host.netns)
        ip("link", "add", host.link, "type", "veth", "peer", "name", inner)
        self._links.append(host.link)
        ip("link", "set", inner, "netns", host.netns)
        ip("link", "set", host.link, "master", self.bridge)
        ip("link", "set", host.link, "up")
        ip("-n", host.netns, "link", "set", "lo", "up")
        ip("-n", host.netns, "addr", "add", f"{host.address}/24", "dev", inner)
        ip("-n", host.netns, "link", "set", inner, "up")
        self.hosts[name] = host
        return host

    def cut(self, name: str) -> None:
        """Take the host's link down: its packets are dropped, both ways, silently."""
        ip("link", "set", self.hosts[name].link, "down")

    def heal(self, name: str) -> None:
        """Bring the host's link up again."""
        ip("link", "set", self.hosts[name].link, "up")

    def command(self, name: str, argv: list[str]) -> list[str]:
        """``argv`` run on host ``name``: in its namespace, under its own hostname."""
        host = self.hosts[name]
        inside = ["ip", "netns", "exec", host.netns, "unshare", "--uts"]
        script = 'hostname "$1" && shift && exec "$@"'
        return [*inside, "sh", "-c", script, "sh", host.name, *argv]

    def pids(self, name: str | None = None) -> set[int]:
        """Processes living in the namespace of host ``name`` (every host's when None)."""
        found: set[int] = set()
        for netns in [self.hosts[name].netns] if name else self._netns:
            out = ip("netns", "pids", netns, check=False).stdout
            found.update(int(word) for word in out.split() if word.isdigit())
        return found

    def kill_host(self, name: str | None = None, timeout: float = 10.0) -> list[int]:
        """SIGKILL every process in host ``name``'s namespace (all hosts' when None); the pids."""
        victims = sorted(self.pids(name))
        for pid in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + timeout
        while self.pids(name) and time.monotonic() < deadline:
            time.sleep(0.05)
        return victims

    def teardown(self) -> None:
        """Kill what runs in the namespaces, then delete namespaces, links and the bridge."""
        self.kill_host()
        for netns in reversed(self._netns):
            ip("netns", "del", netns, check=False)
        for link in reversed(self._links):
            ip("link", "del", link, check=False)  # gone with its namespace, or not yet
        deadline = time.monotonic() + 10
        while self.leftovers() and time.monotonic() < deadline:
            time.sleep(0.1)  # a deleted namespace takes its veth pair with it, not at once

    def leftovers(self) -> list[str]:
        """Namespaces, links and processes of this run that still exist (empty after teardown)."""
        left = [n for n in ip("netns", "list").stdout.split() if n.startswith(self.prefix)]
        for line in ip("-o", "link").stdout.splitlines():
            parts = line.split(":")
            if len(parts) > 1 and parts[1].strip().split("@")[0].startswith(self.prefix):
                left.append(parts[1].strip())
        with contextlib.suppress(subprocess.CalledProcessError):
            left += [f"pid {pid}" for pid in sorted(self.pids())]
        return left
