"""CPU and memory of instances: each one's whole process group, from one walk of /proc.

CPU % needs the previous sample, so the sampler keeps each group's last tick count.
"""

from __future__ import annotations

import os
import time

from corral.process import procfs


class UsageSampler:
    def __init__(self) -> None:
        self._previous: dict[int, tuple[int, float]] = {}

    def sample(self, pgids: set[int]) -> dict[int, tuple[float, int]]:
        """``{pgid: (cpu percent since the last sample, rss bytes)}`` for the live groups."""
        groups = procfs.live_groups(pgids, within=os.getpid())
        now = time.monotonic()
        usage: dict[int, tuple[float, int]] = {}
        for pgid, members in groups.items():
            ticks = sum(m.cpu_ticks for m in members)
            prev = self._previous.get(pgid)
            cpu = 0.0
            if prev is not None and now > prev[1]:
                cpu = (ticks - prev[0]) / procfs.CLOCK_TICKS / (now - prev[1]) * 100
            self._previous[pgid] = (ticks, now)
            usage[pgid] = (round(max(cpu, 0.0), 1), sum(m.rss_bytes for m in members))
        for gone in set(self._previous) - set(groups):
            del self._previous[gone]
        return usage
