"""Log files that rotate themselves (the per-instance sinks that write into them: :mod:`corral.logs.lines`).

The daemon is the only writer of its log files and writes whole lines from the event loop, so:

* rotation renames the file and opens a new one between two writes (never copy + truncate), so
  the lines of the current file plus the rotated ones are exactly the lines written;
* ``corral flush`` truncates an open file between two writes (and deletes the rotated ones);
* compression of rotated files runs on one background thread, off the event loop; pruning
  (``log_retain``, ``log_max_age``) runs after each rotation;
* every name is opened, linked, renamed and deleted relative to its folder's descriptor, never
  through a link (:mod:`corral.logs.safeopen`): an app's user who swaps its log file for a link
  cannot make the daemon write, truncate or create anything else.

* a write that fails (a full disk, a quota, an I/O error) keeps the whole lines that got in and
  takes back the part of a line after them, so the file holds whole lines only, and raises
  (``kept``: how many lines got in); the file then refuses writes for
  :data:`RETRY_AFTER` seconds (:meth:`RotatingFile.waiting`: its writers drop and count the lines
  meanwhile, one failed ``write`` a second instead of one per chunk), and takes them again as
  soon as one succeeds.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from typing import Any
from corral.logs.rotation import RotatedFile, RotationPolicy, rotated_files, rotated_name, to_prune
from corral.logs.safeopen import (
    Folders, LogFileError, Owner, gzip_at, open_log, stat_at, truncate_at, unlink_at,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    import queue

log = logging.getLogger("corral.daemon")
RETRY_AFTER = 1.0  # seconds a file that failed a write refuses the next ones (they are dropped and counted)
COMPRESS_LEVEL = 3  # logs compress well even at low levels; 6+ costs 2-3x the CPU for a few %


class RotatingFile:
    """An append-only log file that rotates by size and/or schedule (see the module docstring).

    Every name is opened, linked, renamed and deleted relative to its folder's descriptor and
    never through a link (:mod:`corral.logs.safeopen`); new files belong to ``owner`` (the app's
    user) when given.  A character device (``/dev/null``) is written as it is, never rotated."""

    def __init__(self, path: str, policy: RotationPolicy, compressor: Compressor, dir_fd: int,
                 owner: Owner | None = None) -> None:
        self.path = path
        self.name = os.path.basename(path)
        self.policy = policy
        self.users = 0
        self.dir_fd = dir_fd
        self.owner = owner
        self._compressor = compressor
        self.retry_at = 0.0  # a failed write: time.monotonic() before which writes are refused
        self.torn = False  # a failed write left part of a line that could not be cut off
        self.kept = 0  # after a failed write: how many of its lines got in (whole)
        self._open(time.time())  # a file left from before a schedule boundary rotates at its first write

    def _open(self, now: float) -> None:
        opened = open_log(self.dir_fd, self.name, self.path, self.owner)
        self.fd, self.regular, self.size = opened.fd, opened.regular, opened.size
        self.opened_at = opened.mtime if opened.size else now  # for a schedule: when its lines began

    def write(self, data: bytes, now: float) -> None:
        if self.regular and self.policy.should_rotate(self.size, self.opened_at, now, len(data)):
            self.rotate(now)
        self._put(data, 0)
        self.size += len(data)

    def write_stamped(self, stamp: bytes, body: bytes, now: float) -> None:
        """Write ``stamp + body[:-len(stamp)]`` without building it: ``body`` is a chunk whose
        newlines were each followed by ``stamp`` (one ``bytes.replace``), so its tail is one
        stamp too many.  One ``writev``, no copy of the chunk."""
        size = len(body)
        if self.regular and self.policy.should_rotate(self.size, self.opened_at, now, size):
            self.rotate(now)
        try:
            written = os.writev(self.fd, [stamp, memoryview(body)[: size - len(stamp)]])
        except OSError:
            self._undo(b"")
            raise
        if written != size:  # a short write (disk full...): finish it the slow way
            self._put(stamp + body[: size - len(stamp)], written)
        self.size += size

    def _put(self, data: bytes, done: int) -> None:
        """Write ``data[done:]`` (``done`` bytes of it are written already); see :meth:`_undo`."""
        view = memoryview(data)[done:]
        try:
            while view:
                written = os.write(self.fd, view)
                view = view[written:]
                done += written
        except OSError:
            self._undo(data[:done])
            raise

    def _undo(self, written: bytes) -> None:
        """A write failed after ``written`` (the part of its data that got in): keep its whole
        lines (``kept``: how many), cut the rest off, and refuse writes for :data:`RETRY_AFTER`
        seconds.  When the rest cannot be cut off, the next write that goes through starts with
        a newline, so no line is glued to a cut one."""
        self.retry_at = time.monotonic() + RETRY_AFTER
        keep = written.rfind(b"\n") + 1
        self.kept = written.count(b"\n")
        self.size += keep
        if keep < len(written) and self.regular:
            try:
                os.ftruncate(self.fd, os.fstat(self.fd).st_size - (len(written) - keep))  # never a link's target
            except OSError:
                self.torn = True

    def waiting(self) -> bool:
        """True while a failed write's retry is not due (its writers drop the lines and count
        them); called only when ``retry_at`` is set, so a healthy file costs one attribute test."""
        if time.monotonic() < self.retry_at:
            return True
        if self.torn:  # a cut line is left: end it before anything else
            try:
                os.write(self.fd, b"\n")
            except OSError:
                self.retry_at = time.monotonic() + RETRY_AFTER
                return True
            self.torn = False
            self.size += 1
        self.retry_at = 0.0
        return False

    def _rotated(self) -> list[RotatedFile]:
        try:
            return rotated_files(self.path, os.listdir(self.dir_fd))
        except OSError:
            return []

    def rotate(self, now: float) -> str | None:
        """Rename the file aside and open a fresh one; returns the rotated file's path."""
        if not self.regular:
            return None
        taken = {os.path.basename(f.path) for f in self._rotated()}
        target = rotated_name(self.path, now, taken)
        while (stat_at(self.dir_fd, os.path.basename(target)) is not None
               or stat_at(self.dir_fd, os.path.basename(target) + ".gz") is not None):  # never overwrite one
            taken.add(os.path.basename(target))
            target = rotated_name(self.path, now, taken)
        old_fd = self.fd
        try:
            self.fd = self._swap(os.path.basename(target))
        except (OSError, LogFileError) as exc:
            log.warning("cannot rotate %s: %s", self.path, exc)
            self.opened_at = now
            return None
        os.close(old_fd)
        self.size = 0
        self.opened_at = now
        if self.policy.compress:
            self._compressor.submit(self.dir_fd, os.path.basename(target), target)
        self.prune(now)
        return target

    def _swap(self, target: str) -> int:
        """Move the current file to ``target`` and put an empty one in its place; returns the new
        file's descriptor.  A hard link then a rename, so ``path`` never goes missing (a reader
        that stats it between two steps finds the old file or the new one); a plain rename where
        hard links are not possible.  Links are never followed: a link the app's user put in
        place of the file is moved aside like a file, and a fresh file takes its place."""
        d, name, tmp = self.dir_fd, self.name, self.name + ".rotating"
        unlink_at(d, tmp, tmp)
        new_fd = open_log(d, tmp, self.path, self.owner).fd
        try:
            os.link(name, target, src_dir_fd=d, dst_dir_fd=d, follow_symlinks=False)
            os.rename(tmp, name, src_dir_fd=d, dst_dir_fd=d)
            return new_fd
        except OSError:
            os.close(new_fd)
            unlink_at(d, tmp, tmp)
            old, new = stat_at(d, name), stat_at(d, target)
            if old is not None and new is not None and (old.st_dev, old.st_ino) == (new.st_dev, new.st_ino):
                unlink_at(d, target, target)
        try:
            os.rename(name, target, src_dir_fd=d, dst_dir_fd=d)
        except FileNotFoundError:
            pass  # the file was deleted under us: a fresh one takes its place
        return open_log(d, name, self.path, self.owner).fd

    def prune(self, now: float) -> list[str]:
        if self.policy.retain is None and self.policy.max_age is None:  # log_retain = "all": no listing
            return []
        doomed = to_prune(self._rotated(), now, self.policy.retain, self.policy.max_age)
        for f in doomed:
            unlink_at(self.dir_fd, os.path.basename(f.path), f.path)
        return [f.path for f in doomed]

    def truncate(self, now: float) -> None:
        """Empty the file (between two writes, so no line is cut) and drop its rotated files."""
        if self.regular:
            os.ftruncate(self.fd, 0)  # the descriptor: never a link's target
        self.size = 0
        self.opened_at = now
        remove_rotated(self.dir_fd, self.path)

    def close(self) -> None:
        os.close(self.fd)


class Tee:
    """Two files written with the same lines: a stream's own log and the combined ``log_file``.

    To the sink (``corral.logs.lines``) it is the stream's own file: its failures are the ones
    counted; a failed write to the combined file is not (that file is a copy)."""

    __slots__ = ("first", "second")

    def __init__(self, first: RotatingFile, second: RotatingFile) -> None:
        self.first, self.second = first, second

    def __getattr__(self, name: str) -> Any:  # path, policy, retry_at, waiting, kept: the first's
        return getattr(self.first, name)

    def write(self, data: bytes, now: float) -> None:
        self.first.write(data, now)
        self._copy(self.second.write, data, now)

    def write_stamped(self, stamp: bytes, body: bytes, now: float) -> None:
        self.first.write_stamped(stamp, body, now)
        self._copy(self.second.write_stamped, stamp, body, now)

    @staticmethod
    def _copy(write: Any, *args: Any) -> None:
        if write.__self__.retry_at and write.__self__.waiting():
            return
        try:
            write(*args)
        except OSError:
            pass


Writable = RotatingFile | Tee


def remove_rotated(dir_fd: int, path: str) -> list[str]:
    """Delete the rotated files of ``path`` (links are deleted, never followed)."""
    removed = []
    try:
        found = rotated_files(path, os.listdir(dir_fd))
    except OSError:
        return []
    for f in found:
        if unlink_at(dir_fd, os.path.basename(f.path), f.path):
            removed.append(f.path)
    return removed


class Compressor:
    """Gzips rotated files on one background thread: ``x.log`` -> ``x.log.gz``, then deletes ``x.log``.

    Each job carries its own duplicate of the folder's descriptor, so the folder may be released
    (the app deleted) before the thread gets to it."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[int, str, str]] | None = None
        self._thread: threading.Thread | None = None
        self.pending = 0

    def submit(self, dir_fd: int, name: str, path: str) -> None:
        if self._queue is None:
            import queue  # compression is opt-in: its modules load at the first rotated file to gzip

            self._queue = queue.SimpleQueue()
        self.pending += 1
        self._queue.put((os.dup(dir_fd), name, path))
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, args=(self._queue,), name="corral-gzip", daemon=True)
            self._thread.start()

    def _run(self, jobs: queue.SimpleQueue[tuple[int, str, str]]) -> None:
        try:  # the lowest CPU priority for this thread only: apps and the event loop come first
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        except (OSError, AttributeError):
            pass
        while True:
            dir_fd, name, path = jobs.get()
            try:
                gzip_at(dir_fd, name, COMPRESS_LEVEL)
            except Exception as exc:  # noqa: BLE001 - a failed compression keeps the plain file
                log.warning("cannot compress %s: %s", path, exc)
            finally:
                os.close(dir_fd)
                self.pending -= 1


class LogWriters:
    """Open log files by path, reference-counted, so merged instances share one file; their
    folders are held open once each (:class:`corral.logs.safeopen.Folders`)."""

    def __init__(self) -> None:
        self._files: dict[str, RotatingFile] = {}
        self._folders = Folders()
        self.compressor = Compressor()

    def acquire(self, path: str, policy: RotationPolicy, owner: Owner | None = None) -> RotatingFile:
        """The open file at ``path`` (opened now if needed); LogFileError when it cannot be used."""
        f = self._files.get(path)
        if f is None:
            folder = os.path.dirname(path) or "."
            dir_fd = self._folders.acquire(folder, path, owner)
            try:
                f = RotatingFile(path, policy, self.compressor, dir_fd, owner)
            except BaseException:
                self._folders.release(folder)
                raise
            self._files[path] = f
        else:
            f.policy = policy  # the last configuration wins
        f.users += 1
        return f

    def release(self, f: RotatingFile) -> None:
        f.users -= 1
        if f.users <= 0 and self._files.get(f.path) is f:
            del self._files[f.path]
            f.close()
            self._folders.release(os.path.dirname(f.path) or ".")

    def flush(self, path: str) -> list[str]:
        """Empty ``path`` (open or not) and delete its rotated files; returns what was touched.
        Nothing is truncated or deleted through a link."""
        now = time.time()
        f = self._files.get(path)
        if f is not None:
            if not f.regular:  # a device (/dev/null): left alone, and nothing beside it is ours
                return []
            rotated = remove_rotated(f.dir_fd, path)
            f.truncate(now)
            return [path, *rotated]
        folder = os.path.dirname(path) or "."
        try:
            dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except (OSError, ValueError):
            return []
        try:
            found = stat_at(dir_fd, os.path.basename(path))
            if found is not None and not (stat.S_ISREG(found.st_mode) or stat.S_ISLNK(found.st_mode)):
                return []  # a device (/dev/null) or a FIFO: left alone
            rotated = remove_rotated(dir_fd, path)
            emptied = truncate_at(dir_fd, os.path.basename(path), path)
        finally:
            os.close(dir_fd)
        return [path, *rotated] if emptied else rotated
