"""Opening ``state.db`` at the daemon's start: a damaged file never keeps the daemon down.

The file is checked (``PRAGMA quick_check``: every page read once) before the daemon trusts it,
in a forked child (``daemon.main.open_store``), so that neither this module nor the memory the
check takes (100 to 300 KB for a full history) stays in the daemon.  One that is not a sound SQLite database (garbage bytes, truncated,
corrupt pages) is moved aside to ``state.db.corrupt-<date>-<time>`` (its ``-wal`` with it) and
the daemon starts with a fresh, empty one, as PM2 starts empty when its dump is corrupt: one ``error`` line in daemon.log says
so and where the old file went, and ``corral ping`` shows it (``store.moved_aside``) until the
daemon exits.  ``corral resurrect`` brings back the apps of the last ``corral save``.  What the
old file recorded is lost, the spawns of a previous daemon with it: their processes are still
found by their cgroups (where corral makes them), not by their markers.

A file that cannot be opened at all (another user's, a folder, a symbolic link, a read-only
disk, an I/O error) is not moved: the daemon refuses to start with one line (:class:`StoreUnusable`).
"""

from __future__ import annotations

import errno
import logging
import os
import _sqlite3 as sqlite3
import stat
import time

from corral.daemon.store import Store
from corral.exceptions import OperationFailed

log = logging.getLogger("corral.daemon")
DAMAGED = {"SQLITE_CORRUPT", "SQLITE_NOTADB"}


class StoreUnusable(OperationFailed):
    """``state.db`` cannot be opened (not because it is damaged); the message says why."""


def reopen(path: str, problem: str | BaseException) -> Store:
    """The store once ``problem`` was found with ``path`` (what ``damage`` said, or what opening
    it raised): a damaged file is moved aside and a new one made; anything else is one line
    (:class:`StoreUnusable`)."""
    if isinstance(problem, OSError):
        raise StoreUnusable(f"cannot use the state database {path}: {_why(problem)}")
    if isinstance(problem, BaseException):
        if getattr(problem, "sqlite_errorname", None) not in DAMAGED:
            raise StoreUnusable(f"cannot use the state database {path}: {problem}")
        problem = str(problem)
    try:
        moved = move_aside(path)
    except OSError as exc:
        raise StoreUnusable(f"the state database {path} is not usable ({problem}) and cannot be moved "
                            f"aside: {_why(exc)}") from None
    log.error("state.db: %s is not a usable database (%s): moved to %s; the daemon starts with no "
              "apps (`corral resurrect` brings back the last `corral save`)", path, problem, moved)
    try:
        store = Store(path)
    except (sqlite3.Error, OSError) as exc:
        raise StoreUnusable(f"cannot create a new state database {path}: {exc}") from None
    store.moved_aside = moved
    return store


def damage(path: str) -> str | None:
    """What is wrong with the database at ``path`` (run in a child process: ``daemon.main``);
    None when it is sound, missing, or cannot be checked (opening it then says why)."""
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return None
        db = sqlite3.connect(path, isolation_level=None)
        try:
            found = [str(row[0]) for row in db.execute("PRAGMA quick_check(3)")]
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        return str(exc) if getattr(exc, "sqlite_errorname", None) in DAMAGED else None
    except (OSError, sqlite3.Error):
        return None
    return None if found == ["ok"] else "; ".join(found) or "quick_check found it damaged"


def move_aside(path: str, now: float | None = None) -> str:
    """Rename ``path`` (and its ``-wal``) to ``<path>.corrupt-<date>-<time>``; ``-shm`` is
    derived from them and removed.  Returns the new name."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(time.time() if now is None else now))
    target, serial = f"{path}.corrupt-{stamp}", 0
    while os.path.lexists(target) or os.path.lexists(target + "-wal"):
        serial += 1
        target = f"{path}.corrupt-{stamp}.{serial}"
    os.rename(path, target)
    for suffix in ("-wal", "-journal"):
        try:
            os.rename(path + suffix, target + suffix)
        except FileNotFoundError:
            pass
    try:
        os.unlink(path + "-shm")
    except FileNotFoundError:
        pass
    return target


def _why(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "it is a symbolic link (corral does not open its state through links)"
    if exc.errno == errno.EISDIR:
        return "it is a folder"
    return exc.strerror or str(exc)
