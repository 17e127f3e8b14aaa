"""Broker URL parsing and redaction for Redis and RabbitMQ URLs."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import parse_qsl, quote, unquote, urlencode

REDIS_TCP_SCHEMES = ("redis", "rediss")
REDIS_SOCKET_SCHEMES = ("redis+socket", "unix")
AMQP_SCHEMES = ("amqp", "pyamqp", "amqps")
KNOWN_SCHEMES = REDIS_TCP_SCHEMES + REDIS_SOCKET_SCHEMES + AMQP_SCHEMES

DEFAULT_REDIS_PORT = 6379
DEFAULT_AMQP_PORT = 5672
DEFAULT_AMQPS_PORT = 5671
_SECRET_QUERY_KEYS = ("password", "passwd", "pass", "pwd", "sentinel_password")

# scheme://user:PASSWORD@ where the password runs to the last "@" of the URL-shaped token.
_USERINFO_RE = re.compile(
    r"(?P<pre>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@'\"<>]*:)"
    r"(?P<pw>[^\s'\"<>]*?)"
    r"(?=@[^\s@'\"<>]*(?:[\s'\"<>]|$))"
)
_QUERY_SECRET_RE = re.compile(
    r"(?P<pre>[?&;](?:" + "|".join(_SECRET_QUERY_KEYS) + r")=)(?P<pw>[^&;\s'\"<>#]*)",
    re.IGNORECASE,
)


class BrokerURLError(ValueError):
    """One clear line, never containing the password."""


def redact_url(text: str) -> str:
    """Replace every URL password in free text with ***, best effort, even for broken URLs."""
    text = _USERINFO_RE.sub(lambda m: m.group("pre") + ("***" if m.group("pw") else ""), text)
    return _QUERY_SECRET_RE.sub(lambda m: m.group("pre") + "***", text)


@dataclass(frozen=True)
class BrokerURL:
    """A parsed Redis or RabbitMQ broker URL whose repr never shows the password."""

    raw: str = field(repr=False)
    scheme: str
    kind: Literal["redis", "amqp"]
    host: str | None
    port: int | None
    db: int | None
    socket_path: str | None
    username: str | None
    password: str | None = field(repr=False)
    vhost: str | None
    tls: bool
    query: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    @property
    def redacted(self) -> str:
        """The raw URL with the password replaced by ***."""
        text = redact_url(self.raw)
        secret = self.password
        if secret and text == self.raw and (secret in text or quote(secret, safe="") in text):
            return self._rebuilt_redacted()
        return text

    def _rebuilt_redacted(self) -> str:
        user = quote(self.username or "", safe="")
        auth = f"{user}:***@"
        if self.socket_path is not None:
            return f"{self.scheme}://{auth}{self.socket_path}"
        tail = f"/{self.db}" if self.kind == "redis" else f"/{quote(self.vhost or '', safe='')}"
        return f"{self.scheme}://{auth}{_host_for_url(self.host or '')}:{self.port}{tail}"

    def __str__(self) -> str:
        return self.redacted

    def __repr__(self) -> str:
        return (
            f"BrokerURL({self.redacted!r}, kind={self.kind!r}, host={self.host!r}, "
            f"port={self.port!r}, db={self.db!r}, socket_path={self.socket_path!r}, "
            f"vhost={self.vhost!r}, tls={self.tls!r})"
        )

    @property
    def is_socket(self) -> bool:
        """True for a Redis server reached over a unix socket."""
        return self.socket_path is not None

    def to_redis_py_url(self) -> str:
        """The URL in the form redis.Redis.from_url accepts (unix://path?db=N for sockets)."""
        if self.kind != "redis":
            raise BrokerURLError(f"{self.redacted}: not a Redis URL")
        auth = ""
        if self.username or self.password:
            auth = quote(self.username or "", safe="")
            if self.password is not None:
                auth += ":" + quote(self.password, safe="")
            auth += "@"
        extra = [(k, v) for k, v in self.query if k.startswith("ssl_")]
        if self.socket_path is not None:
            query = urlencode([("db", str(self.db or 0)), *extra])
            return f"unix://{auth}{quote(self.socket_path)}?{query}"
        scheme = "rediss" if self.tls else "redis"
        url = f"{scheme}://{auth}{_host_for_url(self.host or '')}:{self.port}/{self.db or 0}"
        return f"{url}?{urlencode(extra)}" if extra else url


def _host_for_url(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _fail(url: str, reason: str) -> BrokerURLError:
    return BrokerURLError(f"invalid broker URL {redact_url(url)}: {reason}")


def _split_userinfo(netloc: str) -> tuple[str | None, str | None, str]:
    """Split "user:pass@host:port" into (username, password, hostport)."""
    if "@" not in netloc:
        return None, None, netloc
    userinfo, _, hostport = netloc.rpartition("@")
    user, colon, password = userinfo.partition(":")
    return (unquote(user) or None), (unquote(password) if colon else None), hostport


def _split_hostport(url: str, hostport: str, default_port: int) -> tuple[str, int]:
    if hostport.startswith("["):
        host, bracket, rest = hostport[1:].partition("]")
        if not bracket:
            raise _fail(url, "unclosed '[' in the host")
        port_text = rest[1:] if rest.startswith(":") else rest
        if rest and not rest.startswith(":"):
            raise _fail(url, "unexpected text after the IPv6 host")
    else:
        host, _, port_text = hostport.partition(":")
    host = unquote(host)
    if not host:
        raise _fail(url, "missing host")
    if not port_text:
        return host, default_port
    if not port_text.isdigit():
        raise _fail(url, f"port {port_text!r} is not a number")
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise _fail(url, f"port {port} is out of range 1-65535")
    return host, port


def _parse_db(url: str, text: str, what: str) -> int:
    text = text.strip()
    if not text:
        return 0
    if not text.isdigit():
        raise _fail(url, f"{what} {text!r} is not a non-negative integer")
    return int(text)


def _split_rest(rest: str) -> tuple[str, str, str]:
    """Split what follows "scheme://" into (netloc, path, query), tolerating "@" in passwords."""
    rest, _, _fragment = rest.partition("#")
    before_query, _, query = rest.partition("?")
    at = before_query.rfind("@")
    slash = before_query.find("/", at + 1)
    if slash < 0:
        return before_query, "", query
    return before_query[:slash], before_query[slash:], query


def parse_broker_url(url: str) -> BrokerURL:
    """Parse a redis://, rediss://, redis+socket://, unix://, amqp://, pyamqp:// or amqps:// URL."""
    url = (url or "").strip()
    if not url:
        raise BrokerURLError("empty broker URL")
    scheme, sep, rest = url.partition("://")
    if not sep or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.\-]*", scheme):
        raise BrokerURLError(
            "broker URL has no scheme; expected one of: " + ", ".join(KNOWN_SCHEMES)
        )
    scheme = scheme.lower()
    if scheme not in KNOWN_SCHEMES:
        raise BrokerURLError(
            f"unknown broker URL scheme {scheme!r}; known schemes: " + ", ".join(KNOWN_SCHEMES)
        )
    netloc, path, query_text = _split_rest(rest)
    query = tuple(parse_qsl(query_text, keep_blank_values=True))
    params = dict(query)
    username, password, hostport = _split_userinfo(netloc)
    if password is None and "password" in params:
        password = params["password"]
    if scheme in REDIS_SOCKET_SCHEMES:
        return _parse_socket(url, scheme, hostport, path, query, username, password)
    if scheme in REDIS_TCP_SCHEMES:
        host, port = _split_hostport(url, hostport, DEFAULT_REDIS_PORT)
        db_text = path.strip("/") or params.get("virtual_host", params.get("db", ""))
        return BrokerURL(
            raw=url,
            scheme=scheme,
            kind="redis",
            host=host,
            port=port,
            db=_parse_db(url, unquote(db_text), "db"),
            socket_path=None,
            username=username,
            password=password,
            vhost=None,
            tls=scheme == "rediss",
            query=query,
        )
    tls = scheme == "amqps" or params.get("ssl", "").lower() in {"1", "true", "yes"}
    host, port = _split_hostport(url, hostport, DEFAULT_AMQPS_PORT if tls else DEFAULT_AMQP_PORT)
    vhost_text = unquote(path[1:]) if path else ""
    return BrokerURL(
        raw=url,
        scheme=scheme,
        kind="amqp",
        host=host,
        port=port,
        db=None,
        socket_path=None,
        username="guest" if username is None else username,
        password="guest" if password is None and username is None else password,
        vhost=vhost_text or "/",
        tls=tls,
        query=query,
    )


def _parse_socket(
    url: str,
    scheme: str,
    hostport: str,
    path: str,
    query: tuple[tuple[str, str], ...],
    username: str | None,
    password: str | None,
) -> BrokerURL:
    if hostport:
        raise _fail(url, f"socket path must be absolute, as in {scheme}:///path/to/redis.sock")
    socket_path = unquote(path)
    if not socket_path.strip("/"):
        raise _fail(url, "missing socket path")
    params = dict(query)
    db_text = params.get("virtual_host", params.get("db", ""))
    return BrokerURL(
        raw=url,
        scheme=scheme,
        kind="redis",
        host=None,
        port=None,
        db=_parse_db(url, db_text, "db"),
        socket_path=socket_path,
        username=username,
        password=password,
        vhost=None,
        tls=False,
        query=query,
    )
