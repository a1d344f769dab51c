"""Persistent state in SQLite: the apps users asked for, their live pids, and events.

The desired state outlives the daemon, so a daemon killed with SIGKILL knows on
its next start which apps should run and which old processes to replace.

The history of events is written by one listener of the event bus, :meth:`Store.record`,
and by nothing else: every event the daemon publishes whose ``stored`` is true.
"""

from __future__ import annotations

import json
import _sqlite3 as sqlite3  # the C module alone: the sqlite3 package also loads datetime (~0.4 MB)
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from corral.events import Event

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
"""
EVENTS_KEPT = 20000


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
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA cache_size=-128")
        self._db.executescript(SCHEMA)
        self._inserts = 0
        self._depth = 0

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def batch(self) -> Iterator[None]:
        """One transaction for many writes (a burst of spawns and events); re-entrant."""
        self._depth += 1
        if self._depth == 1:
            self._db.execute("BEGIN")
        try:
            yield
        finally:
            self._depth -= 1
            if self._depth == 0:
                self._db.execute("COMMIT")

    # -- apps ------------------------------------------------------------------------
    def apps(self) -> list[tuple[str, int, dict[str, Any], str]]:
        rows = self._db.execute("SELECT name, id, spec, desired FROM apps ORDER BY id")
        return [(name, app_id, json.loads(spec), desired) for name, app_id, spec, desired in rows]

    def next_app_id(self) -> int:
        (current,) = self._db.execute("SELECT COALESCE(MAX(id), -1) FROM apps").fetchone()
        return int(current) + 1

    def put_app(self, name: str, app_id: int, spec: dict[str, Any], desired: str) -> None:
        self._db.execute(
            "INSERT INTO apps (name, id, spec, desired, created) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(name) DO UPDATE SET spec = excluded.spec, desired = excluded.desired",
            (name, app_id, json.dumps(spec), desired, time.time()),
        )

    def set_desired(self, name: str, desired: str) -> None:
        self._db.execute("UPDATE apps SET desired = ? WHERE name = ?", (desired, name))

    def delete_app(self, name: str) -> None:
        self._db.execute("DELETE FROM apps WHERE name = ?", (name,))
        self._db.execute("DELETE FROM slots WHERE app = ?", (name,))

    def clear_apps(self) -> None:
        self._db.execute("DELETE FROM apps")
        self._db.execute("DELETE FROM slots")

    # -- instances -------------------------------------------------------------------
    def put_instance(
        self, app: str, idx: int, pid: int | None, pgid: int | None,
        start_ticks: int | None, started_at: float | None, restarts: int,
    ) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO slots VALUES (?, ?, ?, ?, ?, ?, ?)",
            (app, idx, pid, pgid, start_ticks, started_at, restarts),
        )

    def clear_slots(self) -> None:
        self._db.execute("DELETE FROM slots")

    def drop_instance(self, app: str, idx: int) -> None:
        self._db.execute("DELETE FROM slots WHERE app = ? AND idx = ?", (app, idx))

    def instances(self) -> list[tuple[str, int, int | None, int | None, int | None, int]]:
        rows = self._db.execute("SELECT app, idx, pid, pgid, start_ticks, restarts FROM slots")
        return list(rows)

    # -- trees: every spawn whose processes may still exist (write-ahead) ------------------
    def intend(self, marker: str, app: str, slot: int, cgroup: str | None) -> None:
        """Record a spawn *before* the fork, committed at once (inside a batch too): a daemon
        killed at any instant after this leaves a row that names the marker of every copy."""
        self._db.execute("INSERT OR REPLACE INTO trees (marker, app, slot, cgroup) VALUES (?, ?, ?, ?)",
                         (marker, app, slot, cgroup))
        if self._depth:
            self._db.execute("COMMIT")
            self._db.execute("BEGIN")

    def tree_started(self, marker: str, pid: int, start_ticks: int | None, cgroup: str | None) -> None:
        self._db.execute("UPDATE trees SET pid = ?, start_ticks = ?, cgroup = ? WHERE marker = ?",
                         (pid, start_ticks, cgroup, marker))

    def tree_gone(self, marker: str) -> None:
        self._db.execute("DELETE FROM trees WHERE marker = ?", (marker,))

    def trees(self) -> list[tuple[str, str, int, str | None, int | None, int | None]]:
        """(marker, app, slot, cgroup, pid, start_ticks) of every spawn not known to be over."""
        return list(self._db.execute("SELECT marker, app, slot, cgroup, pid, start_ticks FROM trees"))

    # -- events ----------------------------------------------------------------------
    def record(self, event: Event) -> None:
        """The bus listener: keep ``event`` in the history if it is one to keep."""
        if not event.stored:
            return
        data = event.data
        self._db.execute(
            "INSERT INTO events (ts, app, instance, kind, message, data) VALUES (?, ?, ?, ?, ?, ?)",
            (event.ts or time.time(), event.app, event.instance, event.kind, event.message,
             json.dumps(dict(data)) if data else None),
        )
        self._inserts += 1
        if self._inserts % 500 == 0:
            self._db.execute(
                "DELETE FROM events WHERE id < (SELECT MAX(id) FROM events) - ?", (EVENTS_KEPT,)
            )

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

    def _newest_events(self, app: str | None, limit: int) -> Iterator[dict[str, Any]]:
        if app is None:
            rows = self._db.execute(
                "SELECT ts, app, instance, kind, message, data FROM events ORDER BY id DESC LIMIT ?", (limit,)
            )
        else:
            rows = self._db.execute(
                "SELECT ts, app, instance, kind, message, data FROM events WHERE app = ? "
                "ORDER BY id DESC LIMIT ?",
                (app, limit),
            )
        for ts, a, i, k, m, d in rows:
            yield {"ts": ts, "app": a, "instance": i, "kind": k, "message": m, "data": json.loads(d) if d else {}}


_compact = json.JSONEncoder(separators=(",", ":")).encode


class MemoryStore(Store):
    """The same interface, kept in memory: for ``corral run`` (no daemon, no state dir)."""

    def __init__(self) -> None:
        super().__init__(":memory:")
