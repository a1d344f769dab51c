"""Where profiles and snapshots go, how they are named, and which ones retention removes.

``CORRAL_HOME/profiles/<app>/<kind>-<instance>-<pid>-<UTC stamp>.<ext>``.  Retention is a PURE
decision (:func:`to_prune`): per app, at most ``keep`` files (default 20, the newest stay) and
none older than ``max_age`` (default 7 days); :func:`prune` carries it out.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable

KEEP = 20
MAX_AGE = 7 * 86400.0
SUFFIXES = (".speedscope.json", ".svg", ".cpuprofile", ".heapsnapshot", ".tracemalloc", ".txt", ".bin")


def app_dir(home: str, app: str) -> str:
    """The folder of APP's profiles (app names are checked by config: no slash, no dot-dot)."""
    return os.path.join(home, "profiles", app)


def stem(kind: str, instance: int, pid: int, now: float) -> str:
    """The common start of one capture's files: ``cpu-0-1234-20260130T101500.123Z`` (milliseconds:
    two captures of one process in the same second must not share files; the second would find
    the first's report and return it)."""
    return f"{kind}-{instance}-{pid}-{time.strftime('%Y%m%dT%H%M%S', time.gmtime(now))}.{int(now * 1000) % 1000:03d}Z"


def to_prune(files: Iterable[tuple[str, float]], now: float, keep: int = KEEP,
             max_age: float = MAX_AGE) -> list[str]:
    """PURE: of FILES (name, modification time) of one app, those retention removes: every
    one older than MAX_AGE, and beyond the KEEP newest the rest.  Oldest first."""
    ordered = sorted(files, key=lambda f: (f[1], f[0]), reverse=True)  # newest first
    doomed = [name for i, (name, mtime) in enumerate(ordered) if i >= keep or now - mtime > max_age]
    return list(reversed(doomed))


def ours(name: str) -> bool:
    """A file retention may remove: one corral wrote (never a file a user put there)."""
    return name.split("-", 1)[0] in ("cpu", "heap", "stack") and name.endswith(SUFFIXES)


def prune(directory: str, now: float | None = None, keep: int = KEEP, max_age: float = MAX_AGE) -> list[str]:
    """Remove what :func:`to_prune` says in DIRECTORY; the names removed."""
    try:
        entries = [(e.name, e.stat().st_mtime) for e in os.scandir(directory) if e.is_file() and ours(e.name)]
    except OSError:
        return []
    removed = []
    for name in to_prune(entries, time.time() if now is None else now, keep, max_age):
        try:
            os.unlink(os.path.join(directory, name))
            removed.append(name)
        except OSError:
            pass
    return removed
