"""The history of job runs: SQLite, ``jobs.db`` beside ``state.db``, bounded per job.

One row per run or skipped trigger: trigger, start, end, exit code or signal, duration, the tail
of its output (redacted, as its log files), its retry number, and an outcome (``ok``, ``failed``,
``timeout``, ``replaced``, ``skipped``, ``error``: it could not start).  ``slots`` keeps each job's
last scheduled time, for ``catch_up`` after a daemon was down.

A file of its own (like ``metrics.db``): the history is disposable, the daemon's state is not.
A write the disk refuses is dropped and said once in daemon.log; it never stops a job.
"""

from __future__ import annotations

import logging
import _sqlite3 as sqlite3
from typing import Any

log = logging.getLogger("corral.daemon")

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (id INTEGER PRIMARY KEY, job TEXT NOT NULL, trig TEXT NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 0, started REAL NOT NULL, ended REAL, code INTEGER, signal TEXT,
    outcome TEXT NOT NULL, tail TEXT, note TEXT);
CREATE INDEX IF NOT EXISTS runs_job ON runs (job, id);
CREATE TABLE IF NOT EXISTS slots (job TEXT PRIMARY KEY, slot REAL NOT NULL);
CREATE TABLE IF NOT EXISTS paused (job TEXT PRIMARY KEY);
"""
COLUMNS = ("id", "job", "trigger", "attempt", "started", "ended", "code", "signal", "outcome", "tail", "note")


class History:
    def __init__(self, path: str) -> None:
        if path != ":memory:":
            import os

            os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600))
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA cache_size=-32")
        self.db.executescript(SCHEMA)
        self.failing: str | None = None

    def close(self) -> None:
        self.db.close()

    def _write(self, sql: str, args: tuple[Any, ...]) -> int | None:
        try:
            cursor = self.db.execute(sql, args)
        except sqlite3.Error as exc:
            if self.failing is None:
                log.warning("jobs.db: history not written (%s); jobs run on", exc)
            self.failing = str(exc)
            return None
        self.failing = None
        return cursor.lastrowid

    def started(self, job: str, trigger: str, attempt: int, at: float) -> int | None:
        return self._write("INSERT INTO runs (job, trig, attempt, started, outcome) VALUES (?, ?, ?, ?, 'running')",
                           (job, trigger, attempt, at))

    def ended(self, run_id: int | None, at: float, code: int | None, sig: str | None, outcome: str, tail: str,
              note: str | None = None) -> None:
        if run_id is not None:
            self._write("UPDATE runs SET ended = ?, code = ?, signal = ?, outcome = ?, tail = ?, note = ? WHERE id = ?",
                        (at, code, sig, outcome, tail, note, run_id))

    def skipped(self, job: str, trigger: str, at: float, reason: str) -> None:
        self._write("INSERT INTO runs (job, trig, started, ended, outcome, note) VALUES (?, ?, ?, ?, 'skipped', ?)",
                    (job, trigger, at, at, reason))

    def prune(self, job: str, keep: int) -> None:
        """Keep the ``keep`` newest rows of ``job``."""
        self._write("DELETE FROM runs WHERE job = ? AND id <= (SELECT id FROM runs WHERE job = ? "
                    "ORDER BY id DESC LIMIT 1 OFFSET ?)", (job, job, keep))

    def forget_others(self, jobs: list[str]) -> None:
        """Jobs no longer declared: their rows go (the maintenance prune)."""
        marks = ",".join("?" * len(jobs))
        self._write(f"DELETE FROM runs WHERE job NOT IN ({marks})", tuple(jobs))
        self._write(f"DELETE FROM slots WHERE job NOT IN ({marks})", tuple(jobs))

    def runs(self, job: str, limit: int = 100) -> list[dict[str, Any]]:
        rows = self.db.execute(f"SELECT {', '.join(c if c != 'trigger' else 'trig' for c in COLUMNS)} FROM runs "
                               "WHERE job = ? ORDER BY id DESC LIMIT ?", (job, limit)).fetchall()
        return [dict(zip(COLUMNS, row)) for row in reversed(rows)]

    def last(self, job: str) -> dict[str, Any] | None:
        """The last run that ended (skips not counted)."""
        row = self.db.execute(f"SELECT {', '.join(c if c != 'trigger' else 'trig' for c in COLUMNS)} FROM runs "
                              "WHERE job = ? AND outcome NOT IN ('skipped', 'running') ORDER BY id DESC LIMIT 1",
                              (job,)).fetchone()
        return dict(zip(COLUMNS, row)) if row else None

    def slot(self, job: str) -> float | None:
        row = self.db.execute("SELECT slot FROM slots WHERE job = ?", (job,)).fetchone()
        return float(row[0]) if row else None

    def set_slot(self, job: str, slot: float) -> None:
        self._write("INSERT OR REPLACE INTO slots (job, slot) VALUES (?, ?)", (job, slot))

    def paused(self) -> set[str]:
        return {row[0] for row in self.db.execute("SELECT job FROM paused")}

    def set_paused(self, job: str, paused: bool) -> None:
        if paused:
            self._write("INSERT OR REPLACE INTO paused (job) VALUES (?)", (job,))
        else:
            self._write("DELETE FROM paused WHERE job = ?", (job,))

    def interrupted(self, at: float) -> None:
        """Runs a previous daemon left 'running' ended with it."""
        self._write("UPDATE runs SET outcome = 'interrupted', ended = ? WHERE outcome = 'running'", (at,))
