"""Table-driven tests of broker URL parsing, conversion and redaction."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from console.broker.urls import BrokerURLError, parse_broker_url, redact_url

SECRET = "Sup3r-S3cret"

PARSED: list[tuple[str, dict[str, Any]]] = [
    ("redis://localhost", {"kind": "redis", "host": "localhost", "port": 6379, "db": 0}),
    ("redis://localhost:6380/3", {"host": "localhost", "port": 6380, "db": 3, "tls": False}),
    ("redis://:pw@localhost:6379/0", {"password": "pw", "username": None, "db": 0}),
    ("redis://user:pw@h/15", {"username": "user", "password": "pw", "db": 15}),
    ("redis://user@h", {"username": "user", "password": None}),
    ("redis://h/", {"db": 0}),
    ("redis://h/42", {"db": 42}),
    ("redis://:p%40ss%2Fw@h/1", {"password": "p@ss/w", "host": "h", "db": 1}),
    ("redis://:p@ss@h/1", {"password": "p@ss", "host": "h", "db": 1}),
    ("redis://h?virtual_host=4", {"db": 4}),
    ("redis://h?password=qq", {"password": "qq"}),
    ("REDIS://H:1/2", {"scheme": "redis", "host": "H", "port": 1, "db": 2}),
    ("rediss://h:6380/1", {"tls": True, "scheme": "rediss", "port": 6380}),
    ("redis://[::1]:7000/2", {"host": "::1", "port": 7000, "db": 2}),
    ("redis://[::1]", {"host": "::1", "port": 6379}),
    ("redis+socket:///tmp/r.sock", {"socket_path": "/tmp/r.sock", "db": 0, "host": None}),
    ("redis+socket:///tmp/r.sock?virtual_host=3", {"socket_path": "/tmp/r.sock", "db": 3}),
    ("redis+socket:///tmp/r.sock?db=5", {"db": 5}),
    ("redis+socket:///a%20b/r.sock", {"socket_path": "/a b/r.sock"}),
    ("unix:///var/run/redis.sock?db=2", {"socket_path": "/var/run/redis.sock", "db": 2}),
    ("unix://:pw@/var/run/redis.sock", {"password": "pw", "socket_path": "/var/run/redis.sock"}),
    ("amqp://guest:guest@localhost:5672/sentry", {"kind": "amqp", "vhost": "sentry"}),
    ("amqp://localhost", {"username": "guest", "password": "guest", "vhost": "/", "port": 5672}),
    ("amqp://h/", {"vhost": "/"}),
    ("amqp://h//", {"vhost": "/"}),
    ("amqp://h/%2F", {"vhost": "/"}),
    ("amqp://h/my%2Fvhost", {"vhost": "my/vhost"}),
    ("amqp://u:p@h:5673/v", {"username": "u", "password": "p", "port": 5673, "vhost": "v"}),
    ("amqp://u@h", {"username": "u", "password": None}),
    ("pyamqp://u:p@h/v", {"scheme": "pyamqp", "kind": "amqp", "vhost": "v", "tls": False}),
    ("amqps://u:p@h/v", {"tls": True, "port": 5671}),
    ("amqps://h:5672/", {"tls": True, "port": 5672}),
    ("  redis://h/1  ", {"db": 1, "host": "h"}),
]


@pytest.mark.parametrize(("url", "expected"), PARSED)
def test_parse(url: str, expected: dict[str, Any]) -> None:
    parsed = parse_broker_url(url)
    for name, value in expected.items():
        assert getattr(parsed, name) == value, (name, parsed)


ERRORS: list[tuple[str, str]] = [
    ("", "empty"),
    ("   ", "empty"),
    ("localhost:6379", "no scheme"),
    ("redis:/h", "no scheme"),
    ("mongodb://h/1", "known schemes: redis, rediss, redis+socket, unix, amqp"),
    ("sqs://h", "unknown broker URL scheme 'sqs'"),
    ("redis://", "missing host"),
    ("redis://:6379/0", "missing host"),
    (f"redis://:{SECRET}@/0", "missing host"),
    ("amqp://", "missing host"),
    (f"amqp://guest:{SECRET}@:5672/", "missing host"),
    ("redis://h:abc/0", "port 'abc' is not a number"),
    (f"redis://:{SECRET}@h:abc/0", "not a number"),
    ("redis://h:0", "out of range 1-65535"),
    ("redis://h:65536", "out of range 1-65535"),
    (f"amqp://u:{SECRET}@h:70000/v", "out of range"),
    ("redis://h:-1", "not a number"),
    ("redis://h/abc", "db 'abc' is not a non-negative integer"),
    ("redis://h/-1", "non-negative integer"),
    (f"redis://:{SECRET}@h/x", "non-negative integer"),
    ("redis+socket:///tmp/r.sock?virtual_host=x", "non-negative integer"),
    ("redis+socket://", "missing socket path"),
    ("redis+socket:///", "missing socket path"),
    ("unix://", "missing socket path"),
    ("redis+socket://relative.sock", "must be absolute"),
    ("redis://[::1:6379", "unclosed"),
]


@pytest.mark.parametrize(("url", "fragment"), ERRORS)
def test_errors_are_one_clear_line(url: str, fragment: str) -> None:
    with pytest.raises(BrokerURLError) as info:
        parse_broker_url(url)
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message
    assert SECRET not in message
    assert isinstance(info.value, ValueError)


WITH_SECRETS = [
    f"redis://:{SECRET}@localhost:6379/0",
    f"redis://user:{SECRET}@localhost/1",
    f"rediss://:{SECRET}@h:6380/2",
    f"redis+socket://:{SECRET}@/tmp/r.sock?db=1",
    f"unix://:{SECRET}@/tmp/r.sock",
    f"redis://h/0?password={SECRET}",
    f"amqp://guest:{SECRET}@localhost:5672/sentry",
    f"pyamqp://u:{SECRET}@h//",
    f"amqps://u:{SECRET}@h/v",
    "redis://:p@ss@h/1",
]


@pytest.mark.parametrize("url", WITH_SECRETS)
def test_password_never_shown(url: str) -> None:
    parsed = parse_broker_url(url)
    secret = parsed.password
    assert secret
    for text in (parsed.redacted, repr(parsed), str(parsed), f"{parsed}", f"{parsed!r}"):
        assert secret not in text, text
        assert "***" in text
    assert parsed.redacted.startswith(parsed.scheme + "://")


def test_redacted_keeps_the_rest() -> None:
    assert (
        parse_broker_url("amqp://guest:guest@localhost:5672/sentry").redacted
        == "amqp://guest:***@localhost:5672/sentry"
    )
    assert parse_broker_url("redis://localhost:6379/0").redacted == "redis://localhost:6379/0"
    assert (
        parse_broker_url("redis://h/0?password=x&db=1").redacted == "redis://h/0?password=***&db=1"
    )


REDACT_TEXT = [
    ("no url here", "no url here"),
    ("redis://:pw@h/0", "redis://:***@h/0"),
    ("error: 'redis://:pw@h/0' failed", "error: 'redis://:***@h/0' failed"),
    ("a amqp://u:x@h/v b redis://:y@h/1", "a amqp://u:***@h/v b redis://:***@h/1"),
    ("broken redis//:pw@h", "broken redis//:pw@h"),
    ("weird redis://:p@s:s@h:port/x", "weird redis://:***@h:port/x"),
    ("sqs://key:abc@queue", "sqs://key:***@queue"),
    ("x?password=abc&y=1", "x?password=***&y=1"),
    ("x&PASSWORD=abc", "x&PASSWORD=***"),
    ("redis://user@h/0", "redis://user@h/0"),
    ("redis://h:6379/0", "redis://h:6379/0"),
]


@pytest.mark.parametrize(("text", "expected"), REDACT_TEXT)
def test_redact_url_on_any_text(text: str, expected: str) -> None:
    assert redact_url(text) == expected


REDIS_PY = [
    ("redis://h", "redis://h:6379/0"),
    ("redis://:pw@h:1/2", "redis://:pw@h:1/2"),
    ("redis://:p%40ss@h/3", "redis://:p%40ss@h:6379/3"),
    ("rediss://h/1?ssl_cert_reqs=none", "rediss://h:6379/1?ssl_cert_reqs=none"),
    ("redis://[::1]/1", "redis://[::1]:6379/1"),
    ("redis+socket:///tmp/r.sock?virtual_host=3", "unix:///tmp/r.sock?db=3"),
    ("unix:///tmp/r.sock", "unix:///tmp/r.sock?db=0"),
]


@pytest.mark.parametrize(("url", "expected"), REDIS_PY)
def test_to_redis_py_url(url: str, expected: str) -> None:
    converted = parse_broker_url(url).to_redis_py_url()
    assert converted == expected
    redis.Redis.from_url(converted).close()  # redis-py accepts it


def test_redis_py_gets_the_right_fields() -> None:
    client = redis.Redis.from_url(parse_broker_url("redis://:p%40ss@h:7/3").to_redis_py_url())
    kwargs = client.connection_pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"], kwargs["password"]) == ("h", 7, 3, "p@ss")
    sock = redis.Redis.from_url(parse_broker_url("unix:///tmp/a%20b.sock?db=2").to_redis_py_url())
    assert sock.connection_pool.connection_kwargs["path"] == "/tmp/a b.sock"
    assert sock.connection_pool.connection_kwargs["db"] == 2


def test_amqp_has_no_redis_py_url() -> None:
    with pytest.raises(BrokerURLError) as info:
        parse_broker_url(f"amqp://u:{SECRET}@h/v").to_redis_py_url()
    assert SECRET not in str(info.value)


def test_frozen_and_hashable() -> None:
    parsed = parse_broker_url("redis://h/1")
    assert parsed == parse_broker_url("redis://h/1")
    assert hash(parsed) == hash(parse_broker_url("redis://h/1"))
    with pytest.raises(AttributeError):
        parsed.host = "x"  # type: ignore[misc]
