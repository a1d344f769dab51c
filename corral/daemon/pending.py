"""The writes the store could not save yet (a full disk, an I/O error, a read-only file), kept in
memory until it can: pure bookkeeping, no SQLite here.

* **Rows** (apps, instances, spawn records) are keyed by the row (or the set of rows) they
  write, and only the last write of each key is kept, moved to the end when it comes again.
  Replayed in that order they leave the tables as the whole sequence would have: every row ends
  as the last write that touched it left it, because the last writes of the keys keep their
  order.  So the memory held is bounded by the rows that exist, not by how long the disk is full.
* **Events** (the history) are kept in order, at most :data:`EVENTS_HELD` of them and
  :data:`EVENT_BYTES_HELD` bytes of text: beyond that the oldest go, and are counted.
"""

from __future__ import annotations

from collections import deque

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Iterator

    Params = tuple[Any, ...]

EVENTS_HELD = 1000
EVENT_BYTES_HELD = 1 << 20  # a crash event carries the tail of the log: bound the bytes too


class PendingWrites:
    def __init__(self, max_events: int = EVENTS_HELD, max_event_bytes: int = EVENT_BYTES_HELD) -> None:
        self.rows: dict[object, tuple[str, Params]] = {}
        self.events: deque[tuple[str, Params, int]] = deque()
        self.max_events = max_events
        self.max_event_bytes = max_event_bytes
        self.event_bytes = 0
        self.dropped = 0  # events let go because the queue was full, since the daemon started

    def add(self, key: object, sql: str, params: Params) -> None:
        """Keep a write; ``key`` None is an event (kept in order, never merged)."""
        if key is None:
            self._event(sql, params)
            return
        self.rows.pop(key, None)  # the later write wins, and takes the later place
        self.rows[key] = (sql, params)

    def _event(self, sql: str, params: Params) -> None:
        size = sum(len(p) for p in params if isinstance(p, str))
        self.events.append((sql, params, size))
        self.event_bytes += size
        while len(self.events) > self.max_events or (self.event_bytes > self.max_event_bytes
                                                     and len(self.events) > 1):
            _, _, gone = self.events.popleft()
            self.event_bytes -= gone
            self.dropped += 1

    def discard(self, key: object) -> None:
        self.rows.pop(key, None)

    def writes(self) -> Iterator[tuple[str, Params]]:
        """Every write kept, rows first (in order), then events (in order)."""
        yield from self.rows.values()
        for sql, params, _ in self.events:
            yield sql, params

    def event_params(self) -> list[Params]:
        return [params for _, params, _ in self.events]

    def clear(self) -> None:
        self.rows.clear()
        self.events.clear()
        self.event_bytes = 0

    def __len__(self) -> int:
        return len(self.rows) + len(self.events)
