"""The demo mode's source: what a screen asks of a server, answered from the frozen data."""

from __future__ import annotations

from pathlib import Path

from console.actions import ActionResult
from console.cluster.models import TaskInfo
from console.settings import Settings
from console.snapshot import DashboardData
from console.ui.demo.data import DEMO_LOG, demo_data


class DemoSource:
    """A ConsoleSource that always shows the same frozen cluster; actions only report."""

    def __init__(self, scenario: str = "main") -> None:
        self.scenario = scenario
        self.settings = Settings(broker=None, broker_source="demo", state_dir=Path("/nonexistent"))
        self.actions: list[str] = []
        self.attachment: str | None = "attached: server 4242 since 09:12"
        self.server_pid = 4242
        if scenario == "watch":  # nothing supervised, no server: the console runs watch
            self.settings = self.settings.watching()
            self.attachment = None

    def poll(self) -> DashboardData:
        """The scenario's frozen data."""
        return demo_data(self.scenario)

    def output(self, name: str, last: int | None = None, stamps: bool = False) -> list[str]:
        """A short fixed log."""
        lines = list(DEMO_LOG[-last:] if last else DEMO_LOG)
        if name == "ingest-1":
            lines = [
                "Traceback (most recent call last):",
                "ModuleNotFoundError: No module named 'ingest'",
            ]
        return [f"03:13:05 {line}" for line in lines] if stamps else lines

    def _act(self, text: str) -> ActionResult:
        self.actions.append(text)
        return ActionResult.done(text)

    def restart(self, name: str) -> ActionResult:
        """Record a restart."""
        return self._act(f"restarting {name}")

    def toggle(self, name: str) -> ActionResult:
        """Record a stop/start."""
        return self._act(f"toggling {name}")

    def toggle_cron(self) -> ActionResult:
        """Record a cron toggle."""
        return self._act("toggling cron")

    def scale(self, delta: int, group_name: str | None = None) -> ActionResult:
        """Record a scale."""
        group = group_name or self.settings.worker_groups[0].name
        return self._act(f"{group}: scaling {delta:+d}")

    def rolling_restart(self, group_name: str | None = None) -> ActionResult:
        """Record a rolling restart."""
        return self._act("rolling restart")

    def task(self, uuid: str) -> TaskInfo | None:
        """One of the frozen tasks."""
        return next((t for t in demo_data(self.scenario).active_tasks if t.uuid == uuid), None)

    def revoke(self, uuid: str, terminate: bool = False) -> ActionResult:
        """Record a revoke."""
        return self._act(f"{'terminating' if terminate else 'revoking'} {uuid}")

    def purge(self, queue: str) -> ActionResult:
        """Record a purge."""
        return self._act(f"purged {queue}")

    def pool(self, hostname: str, delta: int) -> ActionResult:
        """Record a pool change."""
        return self._act(f"pool {delta:+d} {hostname}")

    def pool_restart(self, hostname: str) -> ActionResult:
        """Record a pool restart."""
        return self._act(f"pool restart {hostname}")

    def consume(self, hostname: str, queue: str, on: bool = True) -> ActionResult:
        """Record a consumer added or cancelled."""
        return self._act(f"{'consume' if on else 'cancel'} {queue} {hostname}")

    def shutdown_worker(self, hostname: str) -> ActionResult:
        """Record a warm shutdown."""
        return self._act(f"shutdown {hostname}")

    def shutdown(self) -> None:
        """Nothing to stop."""
        self.actions.append("shutdown")

    def shutdown_now(self) -> None:
        """Nothing to stop."""
        self.actions.append("shutdown now")

    def detach(self) -> None:
        """Nothing to leave."""
        self.actions.append("detach")
