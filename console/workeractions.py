"""Remote control of any worker in the cluster, local or not: what watch mode is made of.

Every action goes through Celery's broadcast mailbox and reports what the worker answered, so
the screen shows the worker's own confirmation (or its refusal), never just "sent".
"""

from __future__ import annotations

from console.actions import ActionResult
from console.cluster import ClusterMonitor, RemoteControl, RemoteControlError
from console.cluster.control import PoolLimit
from console.cluster.models import FINISHED_STATES
from console.jobs import action


class WorkerActions:
    """Actions on workers and tasks; mixed into the runtime, which owns the two parts below."""

    control: RemoteControl
    monitor: ClusterMonitor

    @action("revoke {uuid} (terminate: {terminate})")
    def revoke(self, uuid: str, terminate: bool = False) -> ActionResult:
        """Revoke a task everywhere; with ``terminate`` also kill it where it runs."""
        known = self.monitor.task(uuid)
        if known is not None and known.state in FINISHED_STATES:
            if known.state == "REVOKED":
                return ActionResult.refused(f"task {uuid[:8]} is already revoked")
            state = known.state.lower()
            return ActionResult.refused(f"task {uuid[:8]} has already finished ({state})")
        try:
            confirmed = self.control.revoke(uuid, terminate=terminate)
        except RemoteControlError as exc:
            return ActionResult.failed(f"revoke of {uuid[:8]} failed: {exc}")
        verb = "terminated" if terminate else "revoked"
        where = f" on {known.worker}" if known is not None and known.worker else ""
        return ActionResult.done(f"{verb} {uuid[:8]}{where}: {_confirmed(confirmed)}")

    @action("pool {hostname} {delta:+d}")
    def pool(self, hostname: str, delta: int) -> ActionResult:
        """Grow (delta > 0) or shrink a worker's pool through remote control, local or remote."""
        try:
            if delta > 0:
                reply = self.control.pool_grow(hostname, delta)
            else:
                reply = self.control.pool_shrink(hostname, -delta)
        except PoolLimit as exc:
            return ActionResult.refused(str(exc))
        except RemoteControlError as exc:
            return ActionResult.failed(f"{hostname}: {exc}")
        self.monitor.refresh_detail()  # the pool column follows now, not a detail round later
        return ActionResult.done(f"{hostname}: {reply}")

    @action("pool restart {hostname}")
    def pool_restart(self, hostname: str) -> ActionResult:
        """Replace a worker's pool processes (only where the worker allows pool restarts)."""
        try:
            reply = self.control.pool_restart(hostname)
        except RemoteControlError as exc:
            return _refusal_or_failure(hostname, exc)
        return ActionResult.done(f"{hostname}: {reply}")

    @action("consume {hostname} {queue} ({on})")
    def consume(self, hostname: str, queue: str, on: bool = True) -> ActionResult:
        """Start (``on``) or stop consuming ``queue`` on one worker."""
        try:
            if on:
                reply = self.control.add_consumer(hostname, queue)
            else:
                reply = self.control.cancel_consumer(hostname, queue)
        except RemoteControlError as exc:
            return _refusal_or_failure(hostname, exc)
        self.monitor.refresh_detail()  # the queues column follows now
        return ActionResult.done(f"{hostname}: {reply}")

    @action("warm shutdown {hostname}")
    def shutdown_worker(self, hostname: str) -> ActionResult:
        """Ask one worker for a warm shutdown: it finishes its tasks, then goes offline."""
        try:
            self.control.shutdown(hostname)
        except RemoteControlError as exc:
            return ActionResult.failed(f"{hostname}: {exc}")
        return ActionResult.done(f"{hostname}: warm shutdown sent; offline once its tasks end")


def _confirmed(hostnames: list[str]) -> str:
    if not hostnames:
        return "no worker confirmed within the timeout"
    if len(hostnames) == 1:
        return f"confirmed by {hostnames[0]}"
    return f"confirmed by {len(hostnames)} workers"


def _refusal_or_failure(hostname: str, exc: RemoteControlError) -> ActionResult:
    """A worker that answered with an error refused; one that did not answer failed."""
    if "no reply" in str(exc) or "broker unreachable" in str(exc):
        return ActionResult.failed(f"{hostname}: {exc}")
    return ActionResult.refused(f"{hostname}: {exc}")
