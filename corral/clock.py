"""The one time source: ``Clock`` (wall time for timestamps, monotonic time for timers).

The daemon runs on :class:`SystemClock`.  Tests run on :class:`ManualClock`, whose
time moves only when the test says so: ``advance(seconds)`` runs every timer due by
then, in deadline order, with the clock set to each timer's deadline while it runs.

Imports only the standard library (the pure lifecycle may import it).
"""

from __future__ import annotations

import heapq
import time
from typing import Callable, Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Wall time, seconds since the epoch: for timestamps people read."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back: for deadlines and durations."""
        ...


class SystemClock:
    """The real clocks (``time.time`` and ``time.monotonic``, which asyncio's loop uses too)."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


class Scheduled:
    """A call waiting on a :class:`ManualClock`; ``cancel()`` keeps it from running."""

    __slots__ = ("when", "seq", "fn", "cancelled")

    def __init__(self, when: float, seq: int, fn: Callable[[], object]) -> None:
        self.when = when
        self.seq = seq
        self.fn = fn
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True

    def __lt__(self, other: Scheduled) -> bool:
        return (self.when, self.seq) < (other.when, other.seq)


class ManualClock:
    """A clock for tests: time stands still until :meth:`advance`.

    ``wall`` is the wall time at monotonic time ``start``; both move together.
    """

    def __init__(self, start: float = 0.0, wall: float = 1_700_000_000.0) -> None:
        self._mono = start
        self._offset = wall - start
        self._queue: list[Scheduled] = []
        self._seq = 0

    def now(self) -> float:
        return self._mono + self._offset

    def monotonic(self) -> float:
        return self._mono

    def call_at(self, when: float, fn: Callable[[], object]) -> Scheduled:
        """Run ``fn`` once the clock reaches ``when`` (monotonic); a deadline already past
        runs at the next :meth:`advance`, ``advance(0)`` included."""
        self._seq += 1
        entry = Scheduled(when, self._seq, fn)
        heapq.heappush(self._queue, entry)
        return entry

    def pending(self) -> int:
        """Calls still waiting (cancelled ones not counted)."""
        return sum(1 for entry in self._queue if not entry.cancelled)

    def next_deadline(self) -> float | None:
        live = [entry.when for entry in self._queue if not entry.cancelled]
        return min(live) if live else None

    def advance(self, seconds: float) -> None:
        """Move time forward, running each call that falls due, earliest first (ties in the
        order they were scheduled).  Calls scheduled while advancing run too if they fall due."""
        if seconds < 0:
            raise ValueError("a clock never goes back")
        target = self._mono + seconds
        while self._queue and self._queue[0].when <= target:
            entry = heapq.heappop(self._queue)
            if entry.cancelled:
                continue
            self._mono = max(self._mono, entry.when)
            entry.fn()
        self._mono = target
