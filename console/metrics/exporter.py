"""One exporter per console: task event counts hooked into the cluster state, plus the listener."""

from __future__ import annotations

import logging
import time

from prometheus_client.registry import CollectorRegistry

from console.metrics.address import MetricsAddress
from console.metrics.collector import ConsoleCollector
from console.metrics.exposition import scraper
from console.metrics.health import judge
from console.metrics.options import metrics_address
from console.metrics.server import MetricsServer
from console.metrics.taskevents import TaskEventCounts
from console.runtime import ConsoleRuntime
from console.settings import Settings

log = logging.getLogger("sentry_console.metrics")


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
