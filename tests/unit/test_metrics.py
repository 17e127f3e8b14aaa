"""Metrics without a network: addresses, the event hook's counters, the collector, /healthz."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_parse
from prometheus_client.registry import CollectorRegistry

from console.broker.health import BrokerHealth
from console.cluster.models import WorkerInfo
from console.cluster.state import ClusterState
from console.metrics.address import (
    MetricsAddress,
    MetricsAddressError,
    checked_address,
    parse_address,
)
from console.metrics.collector import ConsoleCollector
from console.metrics.exposition import scraper
from console.metrics.health import judge
from console.metrics.taskevents import TaskEventCounts, exception_class
from console.queuestats import QueueRow
from console.runtime import DashboardData
from console.settings import SettingsError, resolve_settings
from console.supervision import ProcessSnapshot, ProcessState
from tests.metrics_support import Samples, parse, total, value

UP = BrokerHealth("connected", None, 1.0, "7.0", 0, 1.0)


def test_addresses_default_to_loopback_and_refuse_the_rest() -> None:
    assert parse_address("9818") == MetricsAddress("127.0.0.1", 9818)
    assert parse_address(":9818") == MetricsAddress("127.0.0.1", 9818)
    assert parse_address("[::1]:9000") == MetricsAddress("::1", 9000)
    assert str(parse_address("[::1]:9000")) == "[::1]:9000"
    assert checked_address("localhost:9818", public=False) == MetricsAddress("127.0.0.1", 9818)
    assert checked_address("127.0.0.2:1", public=False).host == "127.0.0.2"
    assert checked_address("0.0.0.0:9818", public=True).host == "0.0.0.0"
    for bad, public, why in [
        ("0.0.0.0:9818", False, "0.0.0.0 is not a loopback address"),
        ("[::]:9818", False, ":: is not a loopback address"),
        ("example.com:9818", False, "not a loopback address"),
        ("example.com:9818", True, "is not an IP address"),
        ("::1:9818", False, "write an IPv6 address as [::1]:PORT"),
        ("0", False, "port must be a number from 1 to 65535"),
        ("127.0.0.1:http", False, "port must be a number"),
        ("", False, "give [HOST:]PORT"),
    ]:
        with pytest.raises(MetricsAddressError, match=None) as caught:
            checked_address(bad, public=public)
        assert why in str(caught.value), (bad, str(caught.value))
        assert isinstance(caught.value, SettingsError)  # one line from the CLI


def test_conf_file_metrics_settings(tmp_path: Path) -> None:
    path = tmp_path / "sentry.conf.py"
    env = {"SENTRY_CONF": str(path), "SENTRY_CONSOLE_STATE_DIR": str(tmp_path)}
    path.write_text("CONSOLE_METRICS = 9818\nCONSOLE_METRICS_HOSTNAME = 'generic'\n")
    settings = resolve_settings(env=env)
    assert (settings.metrics, settings.metrics_public) == ("9818", False)
    assert settings.metrics_hostname == "generic"
    assert resolve_settings(env={"SENTRY_CONSOLE_STATE_DIR": str(tmp_path)}).metrics is None
    for body, why in [
        ("CONSOLE_METRICS = ['x']\n", "CONSOLE_METRICS must be"),
        ("CONSOLE_METRICS_PUBLIC = 'yes'\n", "CONSOLE_METRICS_PUBLIC must be True or False"),
        ("CONSOLE_METRICS_HOSTNAME = 'pod'\n", "CONSOLE_METRICS_HOSTNAME must be"),
    ]:
        path.write_text(body)
        with pytest.raises(SettingsError, match=why):
            resolve_settings(env=env)


def event(kind: str, uuid: str, **fields: Any) -> dict[str, Any]:
    return {"type": f"task-{kind}", "uuid": uuid, "timestamp": 1.0, **fields}


def task_run(uuid: str, name: str, host: str, outcome: str = "succeeded") -> list[dict[str, Any]]:
    """The events of one task: sent by a producer, run on ``host``."""
    tail = {"runtime": 0.3} if outcome == "succeeded" else {"exception": "ValueError('x')"}
    return [
        event("sent", uuid, name=name, queue="q1", hostname="gen1@web"),
        event("received", uuid, name=name, hostname=host),
        event("started", uuid, hostname=host),
        event(outcome, uuid, hostname=host, **tail),
    ]


def scrape_of(*collectors: Any) -> Samples:
    registry = CollectorRegistry(auto_describe=False)
    for collector in collectors:
        registry.register(collector)
    return parse(generate_latest(registry).decode())


def families_of(counts: TaskEventCounts) -> Samples:
    class Only:
        def collect(self) -> Any:
            return counts.families()

    return scrape_of(Only())


def test_the_hook_counts_each_event_under_the_tasks_name_and_queue() -> None:
    state = ClusterState()
    counts = TaskEventCounts()
    state.on_task_event = counts.record
    state.apply_many(task_run("a", "t.add", "w1@alpha") + task_run("b", "t.add", "w2@alpha"))
    state.apply_many(task_run("c", "t.fail", "w1@alpha", outcome="failed"))
    samples = families_of(counts)
    add = {"name": "t.add", "hostname": "alpha", "queue_name": "q1"}
    assert value(samples, "celery_task_succeeded_total", **add) == 2  # both nodes: one host
    assert value(samples, "celery_task_started_total", **add) == 2
    assert value(samples, "celery_task_sent_total", **add | {"hostname": "web"}) == 2
    assert value(samples, "celery_task_runtime_count", **add) == 2
    assert value(samples, "celery_task_runtime_sum", **add) == pytest.approx(0.6)
    assert value(samples, "celery_task_runtime_bucket", **add, le="0.25") == 0
    assert value(samples, "celery_task_runtime_bucket", **add, le="0.5") == 2
    fail = add | {"name": "t.fail"}
    assert value(samples, "celery_task_failed_total", **fail, exception="ValueError") == 1
    assert value(samples, "celery_task_failed_total", **add, exception="") == 0
    assert value(samples, "celery_task_revoked_total", **add) == 0  # shown at 0, as upstream
    assert value(samples, "celery_task_revoked_total", **add | {"hostname": "web"}) is None


def test_hostname_modes_and_bounds() -> None:
    node, generic = TaskEventCounts("node"), TaskEventCounts("generic")
    for counts in (node, generic):
        for e in task_run("a", "t.add", "w1@alpha"):
            counts.record(e["type"], "t.add", e["hostname"], "q1", e)
    assert total(families_of(node), "celery_task_succeeded_total", hostname="w1@alpha") == 1
    assert total(families_of(generic), "celery_task_succeeded_total", hostname="generic") == 1
    assert total(families_of(generic), "celery_task_sent_total", hostname="generic") == 1

    small = TaskEventCounts(max_series=3)
    for n in range(10):
        small.record("task-received", f"t{n}", "w@h", "q", {})
    assert len(small) == 4 and small.overflowed == 7  # three label sets, then "other"
    assert total(families_of(small), "celery_task_received_total", name="other") == 7
    assert exception_class("KeyError('k')") == "KeyError"
    assert exception_class(None) == "UnknownException"


def test_series_of_gone_hosts_are_dropped_after_a_quiet_spell() -> None:
    counts = TaskEventCounts()
    counts.record("task-received", "t", "w@gone", "q", {})
    counts.record("task-received", "t", "w@here", "q", {})
    assert counts.prune({"here"}, drop_after=10, now=100) == 0  # first sight: quiet from now
    counts.record("task-received", "t", "w@gone", "q", {})
    assert counts.prune({"here"}, drop_after=10, now=105) == 0  # it changed: kept
    assert counts.prune({"here"}, drop_after=10, now=114) == 0
    assert counts.prune({"here"}, drop_after=10, now=116) == 1  # quiet 11 s, not reported
    assert total(families_of(counts), "celery_task_received_total", hostname="gone") == 0
    assert total(families_of(counts), "celery_task_received_total", hostname="here") == 1


def process(name: str, state: ProcessState, **fields: Any) -> ProcessSnapshot:
    values: dict[str, Any] = dict(
        name=name, group=name.rpartition("-")[0] or name, state=state, pid=None, pgid=None,
        started_at=None, uptime=None, restarts=0, exitstatus=None, backoff_remaining=None,
        cpu_percent=None, rss_bytes=None, description="",
    )  # fmt: skip
    return ProcessSnapshot(**(values | fields))


def worker(node: str, online: bool, active: int, queues: tuple[str, ...] = ("q1",)) -> WorkerInfo:
    return WorkerInfo(node, online, 1.0, 1, active, 0, 0, 4, queues, None, None)


def data(**fields: Any) -> DashboardData:
    base: dict[str, Any] = {"broker_url": "redis://:***@h/0", "broker": UP, "taken_at": 100.0}
    return DashboardData(**(base | fields))


def test_the_collector_reads_one_refresh() -> None:
    snapshot = data(
        processes=(
            process("worker-1", ProcessState.RUNNING, pid=7, uptime=5.0, rss_bytes=1024),
            process("worker-2", ProcessState.FATAL, restarts=3, exitstatus=-9),
            process("cron", ProcessState.RUNNING, pid=8, role="leader", last_slot=1800000000.0),
        ),
        queues=(QueueRow("q1", 13, 2, 1, True, None, None, (), None),),
        workers=(
            worker("worker-1@alpha", True, 2),
            worker("worker-2@alpha", False, 5),
            worker("w@bravo", True, 1, ()),
        ),
        events_received=42,
        errors={"cluster poll": 2},
    )
    collector = ConsoleCollector(
        lambda: snapshot, TaskEventCounts(), drop_after=300, clock=lambda: 101.5
    )
    samples = scrape_of(collector)
    assert value(samples, "celery_worker_up", hostname="alpha") == 1  # any node of the host
    assert value(samples, "celery_worker_tasks_active", hostname="alpha") == 2  # online only
    assert value(samples, "celery_worker_up", hostname="bravo") == 1
    assert value(samples, "celery_queue_length", queue_name="q1") == 13
    assert value(samples, "celery_active_consumer_count", queue_name="q1") == 2
    assert value(samples, "celery_active_worker_count", queue_name="q1") == 1
    assert value(samples, "celery_active_process_count", queue_name="q1") == 4
    assert value(samples, "sentry_console_queue_unacked", queue_name="q1") == 1
    fatal = {"program": "worker-2", "group": "worker"}
    assert value(samples, "sentry_console_program_state", **fatal, state="FATAL") == 1
    assert value(samples, "sentry_console_program_restarts_total", **fatal) == 3
    assert value(samples, "sentry_console_program_last_exit_signal", **fatal) == 9
    running = {"program": "worker-1", "group": "worker"}
    assert value(samples, "sentry_console_program_uptime_seconds", **running) == 5
    assert value(samples, "sentry_console_program_resident_memory_bytes", **running) == 1024
    assert value(samples, "sentry_console_cron_role", program="cron", role="leader") == 1
    assert value(samples, "sentry_console_cron_role", program="cron", role="standby") == 0
    slot = value(samples, "sentry_console_cron_last_slot_timestamp_seconds", program="cron")
    assert slot == 1800000000.0
    assert value(samples, "sentry_console_broker_up") == 1
    assert value(samples, "sentry_console_events_received_total") == 42
    assert value(samples, "sentry_console_errors_total", kind="cluster poll") == 2
    assert value(samples, "sentry_console_refresh_age_seconds") == 1.5
    assert not any("***" in str(labels) for _, labels in samples)  # no URL at all

    nodes = TaskEventCounts("node")
    samples = scrape_of(ConsoleCollector(lambda: snapshot, nodes, drop_after=300))
    assert value(samples, "celery_worker_up", hostname="worker-2@alpha") == 0


def test_health_says_why() -> None:
    assert judge(None, 0).reason == "starting: no refresh yet"
    assert judge(data(), 101).status == 200
    down = BrokerHealth("down", "connection refused", None, None, 0, None)
    assert judge(data(broker=down), 101).reason == "broker down: connection refused"
    fatal = data(processes=(process("worker-1", ProcessState.FATAL),))
    verdict = judge(fatal, 101)
    assert (verdict.status, verdict.reason) == (503, "FATAL: worker-1")
    assert judge(data(), 200).reason == "no refresh for 100 s"


def test_the_direct_rendering_equals_prometheus_clients_in_both_formats() -> None:
    counts = TaskEventCounts()
    for n in range(30):
        outcome = ("succeeded", "failed")[n % 2]
        for e in task_run(f"u{n}", f't.{n % 7}"odd\\name', f"w{n % 3}@h{n % 3}", outcome):
            counts.record(e["type"], f't.{n % 7}"odd\\name', e["hostname"], "q\n1", e)
    counts.record("task-revoked", "t.x", "w@h0", None, {})
    counts.record("task-succeeded", "t.y", "w@h0", "q", {"runtime": 12.5})
    reference = families_of(counts)
    registry = CollectorRegistry(auto_describe=False)
    scrape = scraper(registry, counts.rows)
    chunks, text_type = scrape("")
    text = b"".join(chunks)
    assert text_type.startswith("text/plain")
    assert parse(text.decode()) == reference
    om_chunks, om_type = scrape("application/openmetrics-text; version=1.0.0")
    body = b"".join(om_chunks)
    assert om_type.startswith("application/openmetrics-text")
    assert body.endswith(b"# EOF\n")
    om = {}
    for family in openmetrics_parse(body.decode()):
        for sample in family.samples:
            om[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    assert om == reference
    assert value(reference, "celery_task_runtime_bucket", name="t.y", hostname="h0",
                 queue_name="q", le="+Inf") == 1  # fmt: skip


def test_metrics_alone_means_the_default_address() -> None:
    from console.cli_server import serve
    from console.cli_watch import watch

    for args, address in [
        (["--metrics"], "127.0.0.1:9818"),
        (["--metrics", "9000"], "9000"),
        (["--metrics", "--headless"], "127.0.0.1:9818"),
        ([], None),
    ]:
        assert watch.make_context("watch", list(args)).params["metrics"] == address
    params = serve.make_context("serve", ["--metrics", "--metrics-hostname", "generic"]).params
    assert (params["metrics"], params["metrics_hostname"]) == ("127.0.0.1:9818", "generic")
