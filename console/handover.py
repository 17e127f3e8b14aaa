"""Restart a worker without leaving its queues unconsumed: the replacement starts first, and
the old process gets its warm stop only once the new one answers a ping."""

from __future__ import annotations

from console.cluster import RemoteControl, RemoteControlError
from console.programs import alternate_node_name, celery_node_name, worker_program
from console.settings import Settings, WorkerGroup
from console.supervision import ProcessSnapshot, ProcessState, Supervisor

#: Seconds a replacement gets to start and answer a ping before the restart gives up.
HANDOVER_TIMEOUT = 120.0


def expand_node(value: str) -> str:
    """A ``-n`` value as the worker will call itself (``%h`` and friends filled in)."""
    return celery_node_name(value)


class WorkerHandover:
    """Start-first restarts of supervised worker programs, their node names alternating."""

    def __init__(self, settings: Settings, supervisor: Supervisor, control: RemoteControl):
        self.settings = settings
        self.supervisor = supervisor
        self.control = control

    def slot(self, name: str) -> tuple[WorkerGroup, int] | None:
        """The worker group and process number of program ``name``, if it is a worker."""
        prefix, _, number = name.rpartition("-")
        group = next((g for g in self.settings.worker_groups if g.name == prefix), None)
        if group is None or not number.isdigit():
            return None
        return group, int(number)

    def node_of(self, name: str) -> str | None:
        """The node name the running program ``name`` was started with."""
        command = list(self.supervisor.config(name).command)
        return command[command.index("-n") + 1] if "-n" in command else None

    def restart(self, name: str) -> bool:
        """Replace the running worker ``name`` with no gap; False when it is not a running worker.

        Raises RollingRestartError when the replacement does not come up (the old one stays).
        """
        slot = self.slot(name)
        snap = next((s for s in self.supervisor.snapshot() if s.name == name), None)
        if slot is None or snap is None or snap.state is not ProcessState.RUNNING:
            return False
        group, n = slot
        alternate = self.node_of(name) == group.node_name(n)
        config = worker_program(self.settings, group, n, alternate=alternate)
        node = group.node_name(n)
        node = expand_node(alternate_node_name(node) if alternate else node)

        def ready(_snap: ProcessSnapshot) -> bool:
            try:
                return bool(self.control.ping([node]).get(node, False))
            except RemoteControlError:  # a broker hiccup: ask again at the next poll
                return False

        self.supervisor.replace_running(name, config, ready, timeout=HANDOVER_TIMEOUT)
        return True
