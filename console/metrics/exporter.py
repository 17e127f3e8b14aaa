"""One exporter per console: task event counts hooked into the cluster state, plus the listener."""

from __future__ import annotations

import logging
import time
from dataclasses import replace

from prometheus_client.registry import CollectorRegistry

from console.metrics.address import MetricsAddress, checked_address
from console.metrics.collector import ConsoleCollector
from console.metrics.exposition import scraper
from console.metrics.health import judge
from console.metrics.server import MetricsServer, ensure_bindable
from console.metrics.taskevents import TaskEventCounts
from console.runtime import ConsoleRuntime
from console.settings import Settings

log = logging.getLogger("sentry_console.metrics")


def with_metrics_options(
    settings: Settings, address: str | None, public: bool, hostname: str | None
) -> Settings:
    """Settings with the command-line metrics options over the conf file's."""
    return replace(
        settings,
        metrics=address if address is not None else settings.metrics,
        metrics_public=public or settings.metrics_public,
        metrics_hostname=hostname or settings.metrics_hostname,
    )


def metrics_address(settings: Settings) -> MetricsAddress | None:
    """The checked listen address (None: metrics off); raises one line when it is refused or
    cannot be bound right now (a port in use), so a command fails before it starts anything."""
    if settings.metrics is None:
        return None
    address = checked_address(settings.metrics, public=settings.metrics_public)
    ensure_bindable(address)
    return address


class MetricsExporter:
    """Counts a runtime's task events and serves ``/metrics`` and ``/healthz`` about it."""

    def __init__(
        self, runtime: ConsoleRuntime, address: MetricsAddress, hostname_mode: str
    ) -> None:
        self.runtime = runtime
        self.counts = TaskEventCounts(hostname_mode)
        self.registry = CollectorRegistry(auto_describe=False)
        self.collector = ConsoleCollector(
            lambda: runtime.latest,
            self.counts,
            drop_after=runtime.settings.offline_drop_after,
            task_families=False,
        )
        self.registry.register(self.collector)
        self.server = MetricsServer(
            address,
            scraper(self.registry, self.counts.rows),
            lambda: judge(runtime.latest, time.time()),
        )

    def start(self) -> None:
        """Listen (raises on a bad address before anything is hooked), then count events."""
        self.server.start()
        self.runtime.monitor.state.on_task_event = self.counts.record

    def stop(self) -> None:
        """Unhook and stop listening; safe to call twice."""
        self.runtime.monitor.state.on_task_event = None
        self.server.close()


def start_metrics(settings: Settings, runtime: ConsoleRuntime) -> MetricsExporter | None:
    """Start the exporter the settings ask for (None when metrics are off)."""
    address = metrics_address(settings)
    if address is None:
        return None
    exporter = MetricsExporter(runtime, address, settings.metrics_hostname)
    exporter.start()
    log.info("metrics on http://%s/metrics", address)
    return exporter
