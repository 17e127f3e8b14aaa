"""CPU and memory of whole process groups, sampled with psutil."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from dataclasses import dataclass

import psutil


@dataclass(frozen=True)
class GroupUsage:
    """CPU% and RSS summed over every live process of one process group."""

    cpu_percent: float
    rss_bytes: int
    processes: int


class GroupResourceSampler:
    """Sums CPU% and RSS per process group; caches psutil.Process objects between samples."""

    def __init__(self) -> None:
        self._cache: dict[int, psutil.Process] = {}

    def sample(self, pgids: Iterable[int]) -> dict[int, GroupUsage]:
        """One sample of every group in ``pgids`` (a process's first CPU% reads as 0.0)."""
        wanted = set(pgids)
        members: dict[int, list[int]] = {pgid: [] for pgid in wanted}
        if wanted:
            for pid in psutil.pids():
                try:
                    pgid = os.getpgid(pid)
                except OSError:
                    continue
                if pgid in wanted:
                    members[pgid].append(pid)
        seen: set[int] = set()
        usage: dict[int, GroupUsage] = {}
        for pgid, pids in members.items():
            cpu, rss, count = 0.0, 0, 0
            for pid in pids:
                process = self._process(pid)
                if process is None:
                    continue
                try:
                    with process.oneshot():
                        cpu += process.cpu_percent(interval=None)
                        rss += process.memory_info().rss
                except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                    continue
                seen.add(pid)
                count += 1
            usage[pgid] = GroupUsage(cpu_percent=cpu, rss_bytes=rss, processes=count)
        for pid in set(self._cache) - seen:
            del self._cache[pid]
        return usage

    def _process(self, pid: int) -> psutil.Process | None:
        cached = self._cache.get(pid)
        if cached is not None and cached.is_running():
            return cached
        with contextlib.suppress(psutil.Error):
            self._cache[pid] = psutil.Process(pid)
            return self._cache[pid]
        return None
