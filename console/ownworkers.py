"""The workers this console started, as the workers pane shows them.

Celery only learns that a worker went away from its heartbeats stopping; the console knows at
once, from its own processes. A worker whose program is not running is shown offline, and one
whose program this console removed (scaled away) leaves the pane: it is neither remote nor live.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

from console.cluster.models import WorkerInfo


class OwnWorkers:
    """Remembers the node names of this console's workers across scaling; not thread-safe."""

    def __init__(self) -> None:
        self._current: set[str] = set()
        self.retired: set[str] = set()
        """Node names of worker programs this console has removed (and not added again)."""

    def view(self, running: Mapping[str, bool], workers: Iterable[WorkerInfo]) -> list[WorkerInfo]:
        """The cluster's workers as this console knows them.

        ``running`` maps the node name of each supervised worker program to whether its
        process is alive now.
        """
        self.retired = (self.retired | self._current) - running.keys()
        self._current = set(running)
        shown = []
        for worker in workers:
            if worker.hostname in self.retired:
                continue  # its program is gone, so its process has exited
            if worker.online and running.get(worker.hostname) is False:
                worker = dataclasses.replace(worker, online=False, active=0)
            shown.append(worker)
        return shown
