"""The history of samples: SQLite, ``metrics.db`` beside ``state.db``, pruned by itself.

Raw samples are kept for ``raw`` seconds (24 h), then rolled into 1-minute averages kept for
``averaged`` seconds (14 days); the roll-up and the pruning run about once a minute, with the
sampling.

A file of its own rather than tables in ``state.db``: samples are disposable and many (100 apps
every 10 s: 864,000 rows a day), state is neither.  A sample the disk refuses is dropped (counted,
one daemon.log line per outage), never queued: ``state.db``'s failed-write queue
(``daemon.pending``) would hold them in the daemon's memory, and while it holds anything no
instance may start; its size and its roll-ups stay out of the state's file; and it can be deleted
at any time without losing anything that matters.
"""

from __future__ import annotations

import json
import logging
import _sqlite3 as sqlite3
from typing import Any

log = logging.getLogger("corral.daemon")

SCHEMA = """
CREATE TABLE IF NOT EXISTS instance (ts REAL NOT NULL, res INTEGER NOT NULL, app TEXT NOT NULL,
    idx INTEGER NOT NULL, pid INTEGER, cpu REAL, rss INTEGER, threads INTEGER, fds INTEGER, uptime REAL,
    restarts INTEGER);
CREATE INDEX IF NOT EXISTS instance_ts ON instance (res, ts);
CREATE INDEX IF NOT EXISTS instance_app ON instance (app, ts);
CREATE TABLE IF NOT EXISTS host (ts REAL NOT NULL, res INTEGER NOT NULL, cpu REAL, memory_available REAL,
    memory_available_bytes INTEGER, load1 REAL, disks TEXT);
CREATE INDEX IF NOT EXISTS host_ts ON host (res, ts);
"""
RAW, MINUTE = 0, 60
ROLLUP_EVERY = 60.0  # seconds between roll-ups
DEFAULT_RAW = 86400.0
DEFAULT_AVERAGED = 14 * 86400.0


class History:
    def __init__(self, path: str) -> None:
        self.path = path
        if path != ":memory:":
            import os

            os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600))
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=OFF")  # a sample lost in a crash is no loss
        self.db.execute("PRAGMA cache_size=-32")
        self.db.executescript(SCHEMA)
        self.dropped = 0  # samples the disk refused
        self.failing: str | None = None
        self.raw = DEFAULT_RAW
        self.averaged = DEFAULT_AVERAGED
        self._rolled = 0.0

    def close(self) -> None:
        self.db.close()

    def add(self, reading: dict[str, Any]) -> None:
        """One reading (``Sampler.read``); every so often, the roll-up and the pruning."""
        ts, host = reading["ts"], reading["host"]
        disks = json.dumps({path: m["used"] for path, m in reading["mounts"].items()}, separators=(",", ":"))
        try:
            self.db.execute("BEGIN")
            self.db.executemany(
                "INSERT INTO instance VALUES (?, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(ts, i["app"], i["instance"], i["pid"], i["cpu"], i["rss"], i["threads"], i["fds"], i["uptime"],
                  i["restarts"]) for i in reading["instances"]])
            self.db.execute("INSERT INTO host VALUES (?, 0, ?, ?, ?, ?, ?)",
                            (ts, host["cpu"], host["memory_available"], host["memory_available_bytes"],
                             host["load"][0], disks))
            if ts - self._rolled >= ROLLUP_EVERY:
                self._rollup(ts)
                self._rolled = ts
            self.db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._failed(exc)
            return
        if self.failing is not None:
            log.warning("metrics.db: samples are saved again (%d dropped: %s)", self.dropped, self.failing)
            self.failing = None

    def _failed(self, exc: sqlite3.Error) -> None:
        if self.db.in_transaction:
            try:
                self.db.execute("ROLLBACK")
            except sqlite3.Error:
                pass
        self.dropped += 1
        if self.failing is None:
            self.failing = str(exc) or type(exc).__name__
            log.warning("metrics.db: a sample is dropped (%s); samples are dropped until it takes them again",
                        self.failing)

    def _rollup(self, now: float) -> None:
        """Raw rows older than ``raw`` become 1-minute averages; averages older than ``averaged`` go."""
        cutoff = (now - self.raw) // MINUTE * MINUTE  # whole minutes only: none is split in two
        self.db.execute(
            "INSERT INTO instance SELECT CAST(ts / 60 AS INTEGER) * 60, 60, app, idx, MAX(pid), AVG(cpu), "
            "CAST(AVG(rss) AS INTEGER), MAX(threads), MAX(fds), MAX(uptime), MAX(restarts) FROM instance "
            "WHERE res = 0 AND ts < ? GROUP BY CAST(ts / 60 AS INTEGER), app, idx", (cutoff,))
        self.db.execute(
            "INSERT INTO host SELECT CAST(ts / 60 AS INTEGER) * 60, 60, AVG(cpu), AVG(memory_available), "
            "CAST(AVG(memory_available_bytes) AS INTEGER), AVG(load1), MAX(disks) FROM host "
            "WHERE res = 0 AND ts < ? GROUP BY CAST(ts / 60 AS INTEGER)", (cutoff,))
        for table in ("instance", "host"):
            self.db.execute(f"DELETE FROM {table} WHERE res = 0 AND ts < ?", (cutoff,))
            self.db.execute(f"DELETE FROM {table} WHERE res = 60 AND ts < ?", (now - self.averaged,))

    # -- reading ---------------------------------------------------------------------------
    def series(self, since: float, now: float, apps: list[str] | None, points: int = 60) -> dict[str, Any]:
        """Averages over ``points`` equal buckets from ``since`` to ``now``: host cpu and memory,
        and cpu and rss of every instance (of ``apps``: all when None)."""
        width = max(1.0, (now - since) / points)
        out: dict[str, Any] = {"since": since, "bucket": width, "host": [], "instances": {}}
        bucket = "CAST((ts - ?) / ? AS INTEGER)"
        try:
            rows = self.db.execute(
                f"SELECT {bucket}, AVG(cpu), AVG(memory_available) FROM host WHERE ts >= ? GROUP BY 1 ORDER BY 1",
                (since, width, since))
            out["host"] = [[since + b * width, round(c, 1), round(m, 1)] for b, c, m in rows]
            where = ""
            params: list[Any] = [since, width, since]
            if apps is not None:
                where = f" AND app IN ({','.join('?' * len(apps))})"
                params += apps
            rows = self.db.execute(
                f"SELECT app, idx, {bucket}, AVG(cpu), CAST(AVG(rss) AS INTEGER) FROM instance WHERE ts >= ?{where} "
                "GROUP BY app, idx, 3 ORDER BY app, idx, 3", params)
            for app, idx, b, cpu, rss in rows:
                out["instances"].setdefault(f"{app}:{idx}", []).append([since + b * width, round(cpu, 1), rss])
        except sqlite3.Error as exc:
            out["error"] = str(exc)
        return out

    def status(self) -> dict[str, Any]:
        return {"path": self.path, "dropped": self.dropped, "error": self.failing,
                "raw": self.raw, "averaged": self.averaged}
