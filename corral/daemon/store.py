"""Persistent state in SQLite: the apps users asked for, their live pids, and events.

The desired state outlives the daemon, so a daemon killed with SIGKILL knows on
its next start which apps should run and which old processes to replace.

The history of events is written by one listener of the event bus, :meth:`Store.record`,
and by nothing else: every event the daemon publishes whose ``stored`` is true.

**No write raises.**  One SQLite refuses (``database or disk is full``, ``disk I/O error``, a
read-only file) is kept in memory with every later one, and retried until it is saved
(:mod:`corral.daemon.pending`, loaded then); :meth:`Store.status` is what ``ping`` and
``describe`` show.  The one write that cannot wait is a spawn's record, before its fork
(:meth:`Store.intend`): when it cannot be saved the spawn is refused (:class:`StoreUnavailable`),
never made untracked.  A write SQLite refuses for what it is (a constraint, a misuse) would
fail forever: it is dropped with one daemon.log line.
"""

from __future__ import annotations

import json
import logging
import _sqlite3 as sqlite3  # the C module alone: the sqlite3 package also loads datetime (~0.4 MB)
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Callable

from corral.events import Event
from corral.exceptions import OperationFailed

if TYPE_CHECKING:
    from corral.daemon.pending import Failing
    from corral.daemon.timers import Timers

    Params = tuple[Any, ...]
    Op = tuple[object, str, Params]  # (key, or None for an event; sql; params)

log = logging.getLogger("corral.daemon")

SCHEMA = """
CREATE TABLE IF NOT EXISTS apps (
    name TEXT PRIMARY KEY,
    id INTEGER NOT NULL UNIQUE,
    spec TEXT NOT NULL,
    desired TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS slots (
    app TEXT NOT NULL,
    idx INTEGER NOT NULL,
    pid INTEGER,
    pgid INTEGER,
    start_ticks INTEGER,
    started_at REAL,
    restarts INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (app, idx)
);
CREATE TABLE IF NOT EXISTS trees (
    marker TEXT PRIMARY KEY,
    app TEXT NOT NULL,
    slot INTEGER NOT NULL,
    cgroup TEXT,
    pid INTEGER,
    start_ticks INTEGER
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    app TEXT NOT NULL,
    instance INTEGER,
    kind TEXT NOT NULL,
    message TEXT NOT NULL,
    data TEXT
);
CREATE INDEX IF NOT EXISTS events_app ON events (app, id);
CREATE TABLE IF NOT EXISTS settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""
EVENTS_KEPT = 20000
#: errors that say a statement can never succeed (a constraint, a misuse): not retried
REFUSED = (sqlite3.IntegrityError, sqlite3.DataError, sqlite3.ProgrammingError, sqlite3.InterfaceError,
           sqlite3.NotSupportedError)
INSERT_EVENT = "INSERT INTO events (ts, app, instance, kind, message, data) VALUES (?, ?, ?, ?, ?, ?)"


class StoreUnavailable(OperationFailed):
    """A write that had to be saved at once (a spawn's record) could not be; the message says why."""


class Skipped:
    """A stored app the daemon does not run (its row does not load): shown by ``ls``, removed by
    ``delete``."""

    __slots__ = ("rowid", "app_id", "reason")

    def __init__(self, rowid: int, app_id: int | None, reason: str) -> None:
        self.rowid, self.app_id, self.reason = rowid, app_id, reason


def private_db(path: str) -> None:
    """Create the database file 0600 before SQLite opens it (SQLite gives its -wal and -shm files
    the database's mode), and tighten the files an older version left 0644 (they are ours)."""
    import os
    import stat

    os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600))
    for name in (path, path + "-wal", path + "-shm"):
        try:
            st = os.lstat(name)
        except FileNotFoundError:
            continue
        if stat.S_ISREG(st.st_mode) and st.st_mode & 0o077:
            os.chmod(name, 0o600)


class Store:
    def __init__(self, path: str) -> None:
        if path != ":memory:":
            private_db(path)
        self.path = path
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA cache_size=-64")  # 64 KiB: pages not held are in the OS cache
            self.db.executescript(SCHEMA)
        except BaseException:
            self.db.close()
            raise
        self._depth = 0
        self._in_txn = False
        self._txn: list[Op] = []  # the writes of the open transaction, kept again if it fails
        self._inserts = 0  # events written: the history is trimmed every so many
        self.failing: Failing | None = None  # the writes not saved yet (corral.daemon.pending)
        self.events_dropped = 0  # events that could not be kept while writes were not saved
        self.timers: Timers | None = None
        self._on_saved: Callable[[], object] | None = None
        self.moved_aside: str | None = None  # where an unusable state.db went (storefile)
        self.skipped: dict[str, Skipped] = {}  # name -> a stored app not run (recovery)

    def retry_with(self, timers: Timers, on_saved: Callable[[], object] | None = None) -> None:
        """Retry failed writes on ``timers``; ``on_saved()`` once they are all saved again."""
        self.timers = timers
        self._on_saved = on_saved

    def close(self) -> None:
        if self.failing is not None:
            self.failing.close()
        self.db.close()

    def status(self) -> dict[str, Any]:
        """What ``ping`` and ``describe`` show: ``ok`` false while writes are not being saved."""
        out: dict[str, Any] = self.failing.status() if self.failing is not None else {
            "ok": True, "pending": 0, "events_dropped": self.events_dropped}
        if self.moved_aside:
            out["moved_aside"] = self.moved_aside
        return out

    def now(self) -> float:
        return self.timers.clock.now() if self.timers is not None else time.time()

    # -- writes, which never raise ---------------------------------------------------
    @contextmanager
    def batch(self) -> Iterator[None]:
        """One transaction for many writes (a burst of spawns and events); re-entrant."""
        self._depth += 1
        if self._depth == 1 and self.failing is None:
            self._begin()
        try:
            yield
        finally:
            self._depth -= 1
            if self._depth == 0 and self._in_txn:
                self._commit()

    def _begin(self) -> None:
        try:
            self.db.execute("BEGIN")
        except sqlite3.Error as exc:
            self._fail(exc)
            return
        self._in_txn = True

    def _commit(self) -> None:
        try:
            self.db.execute("COMMIT")
        except sqlite3.Error as exc:  # SQLite rolled the transaction back: its writes are kept
            self._fail(exc)
            return
        self._in_txn = False
        self._txn = []

    def _write(self, key: object, sql: str, params: Params) -> None:
        if self.failing is not None:  # behind the writes not saved yet, never before them
            self.failing.add(key, sql, params)
            return
        try:
            self.db.execute(sql, params)
        except REFUSED as exc:
            refused(exc, sql)
            return
        except sqlite3.Error as exc:
            self._fail(exc, (key, sql, params))
            return
        if self._in_txn:
            self._txn.append((key, sql, params))

    def _fail(self, exc: sqlite3.Error, op: Op | None = None) -> None:
        from corral.daemon.pending import fail  # the first write refused: loaded now

        ops, self._txn = self._txn, []
        self._in_txn = False
        self.rollback()
        self.failing = fail(self, exc, [*ops, op] if op is not None else ops)

    def rollback(self) -> None:
        if self.db.in_transaction:
            try:
                self.db.execute("ROLLBACK")
            except sqlite3.Error:
                pass

    def flush(self) -> bool:
        """Write what waits now; True when nothing is left unsaved."""
        return self.failing is None or self.failing.flush()

    def saved_again(self, events: int, dropped: int) -> None:
        """Called by ``pending.Failing.flush``: everything kept is saved."""
        self.failing = None
        self._inserts += events
        self.events_dropped += dropped
        if self._depth:  # inside a batch: the rest of it is one transaction again
            self._begin()
        if self._on_saved is not None:
            self._on_saved()

    # -- apps ------------------------------------------------------------------------
    def apps(self) -> list[tuple[int, Any, Any, Any, Any]]:
        """(rowid, name, id, spec as stored, desired) of every stored app, as they are: the
        caller checks them (``daemon.recovery``)."""
        return list(self.db.execute("SELECT rowid, name, id, spec, desired FROM apps ORDER BY id"))

    def next_app_id(self) -> int:
        try:
            (current,) = self.db.execute("SELECT COALESCE(MAX(id), -1) FROM apps").fetchone()
            return int(current) + 1
        except (sqlite3.Error, TypeError, ValueError):  # unreadable: the caller's own ids decide
            return 0

    def put_app(self, name: str, app_id: int, spec: dict[str, Any], desired: str) -> None:
        """The whole row (a row left out at recovery under this name is replaced by it)."""
        self.skipped.pop(name, None)
        self._write(("app", name),
                    "INSERT INTO apps (name, id, spec, desired, created) VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT(name) DO UPDATE SET id = excluded.id, spec = excluded.spec, "
                    "desired = excluded.desired",
                    (name, app_id, json.dumps(spec), desired, time.time()))

    def set_desired(self, name: str, desired: str) -> None:
        self._write(("desired", name), "UPDATE apps SET desired = ? WHERE name = ?", (desired, name))

    def delete_app(self, name: str) -> None:
        self.skipped.pop(name, None)
        self._write(("app", name), "DELETE FROM apps WHERE name = ?", (name,))
        self._write(("slots of", name), "DELETE FROM slots WHERE app = ?", (name,))

    def skip(self, rowid: int, name: str, app_id: int | None, reason: str) -> None:
        """Remember a stored app recovery left out (its row stays until ``forget_skipped``)."""
        self.skipped[name] = Skipped(rowid, app_id, reason)

    def forget_skipped(self, name: str) -> None:
        """Delete the row of an app recovery left out (``corral delete NAME``)."""
        found = self.skipped.pop(name, None)
        if found is not None:
            self._write(("row", found.rowid), "DELETE FROM apps WHERE rowid = ?", (found.rowid,))

    def clear_apps(self) -> None:
        self.skipped.clear()
        self._write(("all apps",), "DELETE FROM apps", ())
        self._write(("all slots",), "DELETE FROM slots", ())

    # -- daemon-wide settings, as the last file that gave any gave them ----
    def put_setting(self, key: str, value: Any) -> None:
        self._write(("setting", key), "INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)",
                    (key, json.dumps(value)))

    def forget_setting(self, key: str) -> None:
        self._write(("setting", key), "DELETE FROM settings WHERE key = ?", (key,))

    def settings(self) -> dict[str, Any]:
        """The stored settings, as written (the caller checks them: ``daemon.settings``)."""
        out: dict[str, Any] = {}
        try:
            rows = list(self.db.execute("SELECT key, value FROM settings"))
        except sqlite3.Error as exc:
            log.warning("state.db: cannot read the settings: %s", describe(exc))
            return out
        for key, value in rows:
            try:
                out[str(key)] = json.loads(value)
            except (TypeError, ValueError):
                log.warning("state.db: setting %r is unreadable: left out", key)
        return out

    # -- instances -------------------------------------------------------------------
    def put_instance(
        self, app: str, idx: int, pid: int | None, pgid: int | None,
        start_ticks: int | None, started_at: float | None, restarts: int,
    ) -> None:
        self._write(("slot", app, idx), "INSERT OR REPLACE INTO slots VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (app, idx, pid, pgid, start_ticks, started_at, restarts))

    def clear_slots(self) -> None:
        self._write(("all slots",), "DELETE FROM slots", ())

    def drop_instance(self, app: str, idx: int) -> None:
        self._write(("slot", app, idx), "DELETE FROM slots WHERE app = ? AND idx = ?", (app, idx))

    def instances(self) -> list[tuple[Any, Any, Any, Any, Any, Any]]:
        rows = self.db.execute("SELECT app, idx, pid, pgid, start_ticks, restarts FROM slots")
        return list(rows)

    # -- trees: every spawn whose processes may still exist (write-ahead) ------------------
    def intend(self, marker: str, app: str, slot: int, cgroup: str | None) -> None:
        """Record a spawn *before* the fork, committed at once (inside a batch too): a daemon
        killed at any instant after this leaves a row that names the marker of every copy.

        Raises :class:`StoreUnavailable` when the record cannot be saved now: no fork then."""
        key = ("tree", marker)
        sql = "INSERT OR REPLACE INTO trees (marker, app, slot, cgroup) VALUES (?, ?, ?, ?)"
        if self.failing is None:
            self._write(key, sql, (marker, app, slot, cgroup))
            if self._in_txn:
                self._commit()  # with everything before it in the batch
                if self.failing is None and self._depth:
                    self._begin()
        else:  # writes are waiting: they go first, with the record
            self.failing.add(key, sql, (marker, app, slot, cgroup))
            self.failing.flush()
        if self.failing is not None:
            self.failing.discard(key)  # no fork: nothing to record
            raise StoreUnavailable(f"the state database does not take writes ({self.failing.error}): "
                                   "waiting until it does (never a copy the next daemon could not find)")

    def tree_started(self, marker: str, pid: int, start_ticks: int | None, cgroup: str | None) -> None:
        self._write(("tree started", marker), "UPDATE trees SET pid = ?, start_ticks = ?, cgroup = ? WHERE marker = ?",
                    (pid, start_ticks, cgroup, marker))

    def tree_gone(self, marker: str) -> None:
        self._write(("tree", marker), "DELETE FROM trees WHERE marker = ?", (marker,))

    def trees(self) -> list[tuple[Any, Any, Any, Any, Any, Any]]:
        """(marker, app, slot, cgroup, pid, start_ticks) of every spawn not known to be over."""
        return list(self.db.execute("SELECT marker, app, slot, cgroup, pid, start_ticks FROM trees"))

    # -- events ----------------------------------------------------------------------
    def record(self, event: Event) -> None:
        """The bus listener: keep ``event`` in the history if it is one to keep."""
        if not event.stored:
            return
        data = event.data
        self._write(None, INSERT_EVENT, (event.ts or time.time(), event.app, event.instance, event.kind,
                                         event.message, json.dumps(dict(data)) if data else None))
        self._inserts += 1
        if self._inserts % 500 == 0:
            self._write(("trim",), "DELETE FROM events WHERE id < (SELECT MAX(id) FROM events) - ?",
                        (EVENTS_KEPT,))

    def events(self, app: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        out = list(self._newest_events(app, limit))
        out.reverse()
        return out

    def events_json(self, app: str | None = None, limit: int = 50) -> str:
        """``events()`` as JSON text (compact, as the control protocol writes it), encoded one event
        at a time: 1000 events as dicts plus one ``json.dumps`` of them peak at ~1.6 MB, a peak the
        daemon's heap then keeps; this way, the text and one small dict at a time (~0.13 MB)."""
        parts = [_compact(event) for event in self._newest_events(app, limit)]
        parts.reverse()
        return "[" + ",".join(parts) + "]"

    def events_of(self, kinds: tuple[str, ...], limit: int = 200) -> list[dict[str, Any]]:
        """The last ``limit`` events of these kinds (all apps), oldest first: ``corral alerts``."""
        found = [_event_dict(*p) for p in (self.failing.event_params() if self.failing is not None else [])
                 if p[3] in kinds]
        marks = ", ".join("?" for _ in kinds)
        try:
            rows = self.db.execute(f"SELECT ts, app, instance, kind, message, data FROM events WHERE kind IN ({marks}) "
                                   "ORDER BY id DESC LIMIT ?", (*kinds, limit)).fetchall()
        except sqlite3.Error as exc:
            log.warning("state.db: cannot read the history: %s", describe(exc))
            rows = []
        out = [_event_dict(*row) for row in reversed(rows)] + found
        return out[-limit:] if limit > 0 else []

    def _newest_events(self, app: str | None, limit: int) -> Iterator[dict[str, Any]]:
        """Newest first: the events not saved yet (newer than every saved one), then the saved."""
        if limit <= 0:
            return
        for params in reversed(self.failing.event_params() if self.failing is not None else []):
            if app is None or params[1] == app:
                yield _event_dict(*params)
                limit -= 1
                if limit <= 0:
                    return
        try:
            if app is None:
                rows = self.db.execute(
                    "SELECT ts, app, instance, kind, message, data FROM events ORDER BY id DESC LIMIT ?", (limit,)
                )
            else:
                rows = self.db.execute(
                    "SELECT ts, app, instance, kind, message, data FROM events WHERE app = ? "
                    "ORDER BY id DESC LIMIT ?",
                    (app, limit),
                )
        except sqlite3.Error as exc:  # unreadable now: what is in memory is all there is
            log.warning("state.db: cannot read the history: %s", describe(exc))
            return
        for row in rows:
            yield _event_dict(*row)


def describe(exc: sqlite3.Error) -> str:
    return str(exc) or type(exc).__name__


def refused(exc: sqlite3.Error, sql: str) -> None:
    log.error("state.db: a write was refused and is dropped (%s): %s", describe(exc), sql.split(" (")[0])


def _event_dict(ts: Any, app: Any, instance: Any, kind: Any, message: Any, data: Any) -> dict[str, Any]:
    return {"ts": ts, "app": app, "instance": instance, "kind": kind, "message": message,
            "data": json.loads(data) if data else {}}


_compact = json.JSONEncoder(separators=(",", ":")).encode


class MemoryStore(Store):
    """The same interface, kept in memory: for ``corral run`` (no daemon, no state dir)."""

    def __init__(self) -> None:
        super().__init__(":memory:")
