"""Writes to the state database that never raise: what a failed one becomes.

The daemon's memory is the truth (what ``ls`` and ``describe`` show); the database is its copy on
disk.  When SQLite refuses a write (``database or disk is full``, ``disk I/O error``, a read-only
file), that write, the rest of its transaction and every later write are kept in memory
(:class:`corral.daemon.pending.PendingWrites`: rows merged by key, events in a bounded queue) and
written in one transaction by a retry on the daemon's timers (after 0.5 s, doubling up to 10 s)
until it succeeds; one daemon.log line when saving stops, one when it resumes, with how long
and how much.  :meth:`Writer.status` is what ``ping`` and ``describe`` show.

The one write that cannot wait is a spawn's record, before its fork (``Store.intend``): when it
cannot be saved the spawn is refused (:class:`StoreUnavailable`), never made untracked.  A
write SQLite refuses for what it is (a constraint, a misuse) would fail forever: it is dropped
with one daemon.log line.
"""

from __future__ import annotations

import logging
import _sqlite3 as sqlite3  # the C module alone: the sqlite3 package also loads datetime (~0.4 MB)
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Callable

from corral.daemon.pending import PendingWrites
from corral.exceptions import OperationFailed

if TYPE_CHECKING:
    from corral.daemon.pending import Params
    from corral.daemon.timers import Handle, Timers

log = logging.getLogger("corral.daemon")
RETRY_FIRST = 0.5  # seconds before the first retry of writes that failed ...
RETRY_MAX = 10.0  # ... doubling up to this
#: what proves the disk takes writes again, even with nothing else to write (a refused spawn's
#: record is not kept): created here, not in SCHEMA, so a daemon starts on a full disk
PROBE = ("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value)",
         "INSERT OR REPLACE INTO meta (key, value) VALUES ('saved_at', ?)")
#: errors that say a statement can never succeed (a constraint, a misuse): not retried
REFUSED = (sqlite3.IntegrityError, sqlite3.DataError, sqlite3.ProgrammingError, sqlite3.InterfaceError,
           sqlite3.NotSupportedError)
Op = tuple[object, str, "Params"]  # (key, or None for an event; sql; params)


class StoreUnavailable(OperationFailed):
    """A write that had to be saved at once (a spawn's record) could not be; the message says why."""


class Writer:
    """A connection's writes (``_write``, ``batch``), kept and retried when they fail."""

    def __init__(self, db: Any) -> None:
        self._db = db
        self._depth = 0
        self._in_txn = False
        self._txn: list[Op] = []  # the writes of the open transaction, kept again if it fails
        self.pending = PendingWrites()
        self.failing_since: float | None = None  # wall time of the first write not saved
        self.error: str | None = None
        self._timers: Timers | None = None
        self._retry: Handle | None = None
        self._delay = RETRY_FIRST
        self._on_saved: Callable[[], object] | None = None
        self._inserts = 0  # events written: the history is trimmed every so many

    def retry_with(self, timers: Timers, on_saved: Callable[[], object] | None = None) -> None:
        """Retry failed writes on ``timers``; ``on_saved()`` once they are all saved again."""
        self._timers = timers
        self._on_saved = on_saved

    def close(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
        if self.failing_since is not None and not self.flush():
            log.error("state.db: %d write(s) could not be saved before the daemon exits (%s)",
                      len(self.pending), self.error)
        self._db.close()

    @contextmanager
    def batch(self) -> Iterator[None]:
        """One transaction for many writes (a burst of spawns and events); re-entrant."""
        self._depth += 1
        if self._depth == 1 and self.failing_since is None:
            self._begin()
        try:
            yield
        finally:
            self._depth -= 1
            if self._depth == 0 and self._in_txn:
                self._commit()

    def _begin(self) -> None:
        try:
            self._db.execute("BEGIN")
        except sqlite3.Error as exc:
            self._fail(exc)
            return
        self._in_txn = True

    def _commit(self) -> None:
        try:
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:  # SQLite rolled the transaction back: its writes are kept
            self._fail(exc)
            return
        self._in_txn = False
        self._txn = []

    def _write(self, key: object, sql: str, params: Params) -> None:
        if self.failing_since is not None:  # behind the writes not saved yet, never before them
            self.pending.add(key, sql, params)
            return
        try:
            self._db.execute(sql, params)
        except REFUSED as exc:
            _refused(exc, sql)
            return
        except sqlite3.Error as exc:
            self._fail(exc, (key, sql, params))
            return
        if self._in_txn:
            self._txn.append((key, sql, params))

    def _fail(self, exc: sqlite3.Error, op: Op | None = None) -> None:
        """A write failed: it and the rest of its transaction are kept until they can be saved."""
        ops, self._txn = self._txn, []
        self._in_txn = False
        self._rollback()
        if op is not None:
            ops.append(op)
        for key, sql, params in ops:
            self.pending.add(key, sql, params)
        self.error = describe(exc)
        if self.failing_since is None:
            self.failing_since = self._now()
            self._delay = RETRY_FIRST
            log.error("state.db: cannot save the daemon's state (%s): what corral shows stays true, "
                      "changes are kept in memory and saved when the disk takes them; "
                      "new instances wait until then", self.error)
            self._arm()

    def _now(self) -> float:
        return self._timers.clock.now() if self._timers is not None else time.time()

    def _rollback(self) -> None:
        if self._db.in_transaction:
            try:
                self._db.execute("ROLLBACK")
            except sqlite3.Error:
                pass

    def _arm(self) -> None:
        if self._timers is not None and self._retry is None:
            self._retry = self._timers.after(self._delay, self._retry_now)

    def _retry_now(self) -> None:
        self._retry = None
        self.flush()

    def flush(self) -> bool:
        """Write everything not saved yet, in one transaction; True when nothing is left unsaved
        (then ``on_saved`` runs).  On failure the next retry comes later (bounded backoff)."""
        if self.failing_since is None:
            return True
        try:
            self._db.execute("BEGIN")
            for sql, params in self.pending.writes():
                try:
                    self._db.execute(sql, params)
                except REFUSED as exc:
                    _refused(exc, sql)
            self._db.execute(PROBE[0])
            self._db.execute(PROBE[1], (self._now(),))
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            self.error = describe(exc)
            self._delay = min(self._delay * 2, RETRY_MAX)
            self._arm()
            return False
        log.warning("state.db: the daemon's state is saved again (not saved for %.1fs: %s); "
                    "%d change(s) and %d event(s) kept in memory written, %d event(s) could not be kept",
                    self._now() - self.failing_since, self.error, len(self.pending.rows),
                    len(self.pending.events), self.pending.dropped)
        self._inserts += len(self.pending.events)
        self.pending.clear()
        self.failing_since = None
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        if self._depth:  # inside a batch: the rest of it is one transaction again
            self._begin()
        if self._on_saved is not None:
            self._on_saved()
        return True

    def status(self) -> dict[str, Any]:
        """What ``ping`` and ``describe`` show: ``ok`` false while writes are not being saved."""
        out: dict[str, Any] = {"ok": self.failing_since is None, "pending": len(self.pending),
                               "events_dropped": self.pending.dropped}
        if self.failing_since is not None:
            out.update(since=self.failing_since, error=self.error)
        return out


def describe(exc: sqlite3.Error) -> str:
    return str(exc) or type(exc).__name__


def _refused(exc: sqlite3.Error, sql: str) -> None:
    log.error("state.db: a write was refused and is dropped (%s): %s", describe(exc), sql.split(" (")[0])
