"""Capacity figures that need no broker: growth, time until full, warnings, routes, API URLs."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from kombu import Exchange, Queue

from console.broker.capacity import BrokerCapacity, BrokerMemory, MemoryTrend, memory_warnings
from console.broker.rabbit_api import api_base, shown_base
from console.broker.redis_capacity import app_routes, queue_of
from console.broker.urls import parse_broker_url
from console.settings import SettingsError, resolve_settings
from console.ui.capacity import memory_rank, memory_text, warnings_text

MB = 1 << 20


def test_trend_needs_a_second_then_measures_over_the_window() -> None:
    trend = MemoryTrend(window=10)
    assert trend.add(100.0, 10 * MB) is None
    assert trend.add(100.5, 11 * MB) is None
    rate = trend.add(102.0, 12 * MB)
    assert rate == MB
    for t in range(103, 130):
        rate = trend.add(float(t), 12 * MB)
    assert rate == 0.0, "growth long ago leaves the window"


def test_time_to_full() -> None:
    assert MemoryTrend.seconds_to_full(32 * MB, 64 * MB, float(MB)) == 32.0
    assert MemoryTrend.seconds_to_full(32 * MB, 64 * MB, -1.0) is None
    assert MemoryTrend.seconds_to_full(64 * MB, 64 * MB, 0.0) == 0.0
    assert MemoryTrend.seconds_to_full(32 * MB, None, 1.0) is None


def memory(**kw: object) -> BrokerMemory:
    values: dict[str, object] = {
        "used": 10 * MB,
        "limit": 64 * MB,
        "limit_source": "maxmemory",
        "policy": "noeviction",
    }
    values.update(kw)
    return BrokerMemory(**values)  # type: ignore[arg-type]


def test_eviction_warning_only_for_evicting_policies_under_maxmemory() -> None:
    assert memory_warnings(memory()) == []
    evicting = memory_warnings(memory(policy="volatile-lru"))
    assert [w.code for w in evicting] == ["eviction-policy"] and evicting[0].level == "alarm"
    host = memory(policy="allkeys-lru", limit_source="host", limit=8 << 30)
    assert memory_warnings(host) == [], "no maxmemory: nothing gets evicted"


def test_high_memory_and_full_soon() -> None:
    codes = [w.code for w in memory_warnings(memory(used=60 * MB, seconds_to_full=100.0))]
    assert codes == ["memory-high", "memory-full-soon"]
    assert memory_warnings(memory(used=20 * MB, seconds_to_full=3600.0)) == []


def test_routes_map_deliveries_to_queues() -> None:
    conf = SimpleNamespace(
        task_queues=[Queue("events", Exchange("ev"), routing_key="events.#"), Queue("plain")],
        task_default_queue="plain",
        task_default_exchange=None,
    )
    routes = app_routes(SimpleNamespace(conf=conf))
    assert queue_of(routes, ["events", "plain"], "ev", "events.#") == "events"
    assert queue_of(routes, ["events", "plain"], "", "plain") == "plain"
    assert queue_of(routes, ["events", "plain"], "x", "unknown") is None


def test_api_url_derived_or_given_and_never_shown_with_password() -> None:
    url = parse_broker_url("amqp://u:secret@rabbit.local:5672/prod")
    assert api_base(url) == "http://rabbit.local:15672"
    assert api_base(url, "https://a:b@mgmt:443/rmq/") == "https://a:b@mgmt:443/rmq"
    assert shown_base("https://a:b@mgmt:443/rmq") == "https://mgmt:443/rmq"


def test_screen_texts() -> None:
    full = memory(used=60 * MB, seconds_to_full=240.0, policy="allkeys-lru")
    assert memory_text(full).plain == "mem 60.0M/64.0M max 94% full in 4m"
    assert memory_rank(full) > memory_rank(memory())
    capacity = BrokerCapacity(memory=full, warnings=tuple(memory_warnings(full)))
    text = warnings_text(capacity)
    assert text is not None
    lines = text.plain.splitlines()
    assert lines[0].startswith(" ALARM  maxmemory-policy allkeys-lru")
    assert lines[2] == "+1 more: sentry-console status lists them all"
    assert warnings_text(BrokerCapacity()) is None
    assert warnings_text(None) is None


def test_management_api_setting_from_conf_or_env(tmp_path: Path) -> None:
    conf = tmp_path / "sentry.conf.py"
    conf.write_text('CONSOLE_RABBITMQ_API = "http://admin:apipw@mgmt:15672"\n')
    s = resolve_settings(env={"SENTRY_CONF": str(conf)})
    assert s.rabbitmq_api == "http://admin:apipw@mgmt:15672"
    assert "apipw" not in repr(s)
    env = {"SENTRY_CONF": str(conf), "SENTRY_CONSOLE_RABBITMQ_API": "https://other:443"}
    assert resolve_settings(env=env).rabbitmq_api == "https://other:443"
    conf.write_text('CONSOLE_RABBITMQ_API = "mgmt:15672"\n')
    with pytest.raises(SettingsError, match="CONSOLE_RABBITMQ_API must be an http"):
        resolve_settings(env={"SENTRY_CONF": str(conf)})


@pytest.mark.parametrize("policy", ["allkeys-lru", "volatile-lru", "volatile-ttl"])
def test_eviction_warning_names_the_cron_keys(policy: str) -> None:
    from console.cron.redis_lease import KEY_PREFIX

    (warning,) = memory_warnings(memory(policy=policy))
    assert f"{KEY_PREFIX}*" in warning.message and "cron" in warning.message
    assert ("queued tasks" in warning.message) == policy.startswith("allkeys")


def test_a_time_until_full_past_a_day_is_not_a_forecast() -> None:
    # An idle broker's noise: 2 KB/s against 24 GiB of host memory would say "full in 145d".
    assert MemoryTrend.seconds_to_full(2 * MB, 24 * 1024 * MB, 2048.0) is None
    assert MemoryTrend.seconds_to_full(2 * MB, 24 * 1024 * MB, 2 * float(MB)) == pytest.approx(
        (24 * 1024 - 2) / 2
    )
