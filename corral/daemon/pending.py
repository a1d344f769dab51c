"""A store whose writes are not being saved (a full disk, an I/O error, a read-only file): what
waits, since when, and the retry.  Loaded at the first write SQLite refuses: a daemon whose disk
never fills never loads it.

The daemon's memory is the truth (what ``ls`` and ``describe`` show); the database is its copy on
disk.  From the write SQLite refused on, that write, the rest of its transaction and every later
write are kept here, and written in one transaction by a retry on the daemon's timers (after
0.5 s, doubling up to 10 s) until it succeeds; one daemon.log line when saving stops, one when it
resumes, with how long and how much.

* **Rows** (apps, instances, spawn records) are keyed by the row (or the set of rows) they
  write, and only the last write of each key is kept, moved to the end when it comes again.
  Replayed in that order they leave the tables as the whole sequence would have: every row ends
  as the last write that touched it left it, because the last writes of the keys keep their
  order.  So the memory held is bounded by the rows that exist, not by how long the disk is full.
* **Events** (the history) are kept in order, at most :data:`EVENTS_HELD` of them and
  :data:`EVENT_BYTES_HELD` bytes of text: beyond that the oldest go, and are counted.
"""

from __future__ import annotations

import logging
import _sqlite3 as sqlite3
from collections import deque
from typing import TYPE_CHECKING, Any, Iterator

from corral.daemon.store import REFUSED, describe, refused

if TYPE_CHECKING:
    from corral.daemon.store import Op, Params, Store
    from corral.daemon.timers import Handle

log = logging.getLogger("corral.daemon")
EVENTS_HELD = 1000
EVENT_BYTES_HELD = 1 << 20  # a crash event carries the tail of the log: bound the bytes too
RETRY_FIRST = 0.5  # seconds before the first retry ...
RETRY_MAX = 10.0  # ... doubling up to this
#: what proves the disk takes writes again, even with nothing else to write (a refused spawn's
#: record is not kept): created here, not in the schema, so a daemon starts on a full disk
PROBE = ("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value)",
         "INSERT OR REPLACE INTO meta (key, value) VALUES ('saved_at', ?)")


class PendingWrites:
    """Writes not saved yet: rows merged by key, events in a bounded queue (pure bookkeeping)."""

    def __init__(self, max_events: int = EVENTS_HELD, max_event_bytes: int = EVENT_BYTES_HELD) -> None:
        self.rows: dict[object, tuple[str, Params]] = {}
        self.events: deque[tuple[str, Params, int]] = deque()
        self.max_events = max_events
        self.max_event_bytes = max_event_bytes
        self.event_bytes = 0
        self.dropped = 0  # events let go because the queue was full

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

    def __len__(self) -> int:
        return len(self.rows) + len(self.events)


class Failing(PendingWrites):
    """The writes a store could not save, since when and why, and their retry."""

    def __init__(self, store: Store, error: str) -> None:
        super().__init__()
        self.store = store
        self.since = store.now()  # wall time of the first write not saved
        self.error = error
        self.delay = RETRY_FIRST
        self.retry: Handle | None = None

    def arm(self) -> None:
        timers = self.store.timers
        if timers is not None and self.retry is None:
            self.retry = timers.after(self.delay, self._retry)

    def _retry(self) -> None:
        self.retry = None
        self.flush()

    def flush(self) -> bool:
        """Write everything kept, in one transaction; True when it is saved (the store saves as
        usual again, ``on_saved`` runs).  On failure the next retry comes later."""
        store, db = self.store, self.store.db
        try:
            db.execute("BEGIN")
            for sql, params in self.writes():
                try:
                    db.execute(sql, params)
                except REFUSED as exc:
                    refused(exc, sql)
            db.execute(PROBE[0])
            db.execute(PROBE[1], (store.now(),))
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            store.rollback()
            self.error = describe(exc)
            self.delay = min(self.delay * 2, RETRY_MAX)
            self.arm()
            return False
        log.warning("state.db: the daemon's state is saved again (not saved for %.1fs: %s); "
                    "%d change(s) and %d event(s) kept in memory written, %d event(s) could not be kept",
                    store.now() - self.since, self.error, len(self.rows), len(self.events), self.dropped)
        if self.retry is not None:
            self.retry.cancel()
        store.saved_again(len(self.events), self.dropped)
        return True

    def close(self) -> None:
        """The daemon exits: a last try, and what is lost said once."""
        if self.retry is not None:
            self.retry.cancel()
            self.retry = None
        if not self.flush():
            log.error("state.db: %d change(s) and event(s) could not be saved before the daemon exits (%s)",
                      len(self), self.error)

    def status(self) -> dict[str, Any]:
        return {"ok": False, "since": self.since, "error": self.error, "pending": len(self),
                "events_dropped": self.store.events_dropped + self.dropped}


def fail(store: Store, exc: sqlite3.Error, ops: list[Op]) -> Failing:
    """A write failed: it and the rest of its transaction (``ops``) are kept until they are saved."""
    failing = store.failing
    if failing is None:
        failing = Failing(store, describe(exc))
        log.error("state.db: cannot save the daemon's state (%s): what corral shows stays true, changes are kept "
                  "in memory and saved when the disk takes them; new instances wait until then", failing.error)
    failing.error = describe(exc)
    for key, sql, params in ops:
        failing.add(key, sql, params)
    failing.arm()
    return failing
