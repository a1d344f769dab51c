"""Log files that rotate themselves, and the per-instance sinks that format lines into them.

The daemon is the only writer of its log files and writes whole lines from the event loop, so:

* rotation renames the file and opens a new one between two writes (never copy + truncate), so
  the lines of the current file plus the rotated ones are exactly the lines written;
* ``corral flush`` truncates an open file between two writes (and deletes the rotated ones);
* compression of rotated files runs on one background thread, off the event loop; pruning
  (``log_retain``, ``log_max_age``) runs after each rotation;
* every name is opened, linked, renamed and deleted relative to its folder's descriptor, never
  through a link (:mod:`corral.logs.safeopen`): an app's user who swaps its log file for a link
  cannot make the daemon write, truncate or create anything else.

A sink (:func:`make_sink`) takes a chunk of complete lines from a pipe reader and does, per
chunk: invalid UTF-8 -> U+FFFD, redaction (:meth:`corral.app.redact.Redactor.redact_bytes`), one
timestamp for the chunk (or JSON wrapping per line), one ``write``.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from typing import Any, Callable

from corral.logs.format import json_head, json_lines, make_clock, valid_utf8
from corral.logs.rotation import RotatedFile, RotationPolicy, rotated_files, rotated_name, to_prune
from corral.logs.safeopen import (
    Folders, LogFileError, Owner, gzip_at, open_log, stat_at, truncate_at, unlink_at,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    import queue

    from corral.config.spec import AppSpec

log = logging.getLogger("corral.daemon")
Sink = Callable[[bytes], None]
COMPRESS_LEVEL = 3  # logs compress well even at low levels; 6+ costs 2-3x the CPU for a few %


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


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
        self._open(time.time())  # a file left from before a schedule boundary rotates at its first write

    def _open(self, now: float) -> None:
        opened = open_log(self.dir_fd, self.name, self.path, self.owner)
        self.fd, self.regular, self.size = opened.fd, opened.regular, opened.size
        self.opened_at = opened.mtime if opened.size else now  # for a schedule: when its lines began

    def write(self, data: bytes, now: float) -> None:
        if self.regular and self.policy.should_rotate(self.size, self.opened_at, now, len(data)):
            self.rotate(now)
        write_all(self.fd, data)
        self.size += len(data)

    def write_stamped(self, stamp: bytes, body: bytes, now: float) -> None:
        """Write ``stamp + body[:-len(stamp)]`` without building it: ``body`` is a chunk whose
        newlines were each followed by ``stamp`` (one ``bytes.replace``), so its tail is one
        stamp too many.  One ``writev``, no copy of the chunk."""
        size = len(body)
        if self.regular and self.policy.should_rotate(self.size, self.opened_at, now, size):
            self.rotate(now)
        written = os.writev(self.fd, [stamp, memoryview(body)[: size - len(stamp)]])
        if written != size:  # a short write (disk full...): finish it the slow way
            write_all(self.fd, (stamp + body[: size - len(stamp)])[written:])
        self.size += size

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
    """Two files written with the same lines: a stream's own log and the combined ``log_file``."""

    __slots__ = ("first", "second", "policy")

    def __init__(self, first: RotatingFile, second: RotatingFile) -> None:
        self.first, self.second, self.policy = first, second, first.policy

    def write(self, data: bytes, now: float) -> None:
        self.first.write(data, now)
        self.second.write(data, now)

    def write_stamped(self, stamp: bytes, body: bytes, now: float) -> None:
        self.first.write_stamped(stamp, body, now)
        self.second.write_stamped(stamp, body, now)


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


def piece_limit(max_size: int) -> int:
    """The largest piece of a chunk written at once: a quarter of ``log_max_size`` (64 KiB to
    1 MiB), so rotation keeps files within the limit although one read may hold 1 MiB."""
    return max(64 * 1024, min(1 << 20, max_size // 4)) if max_size else 1 << 62


def pieces(chunk: bytes, limit: int) -> list[bytes]:
    """``chunk`` (whole lines) cut at newlines into pieces of at most ``limit`` bytes (a single
    longer line stays whole)."""
    if len(chunk) <= limit:
        return [chunk]
    out, start, end = [], 0, len(chunk)
    while end - start > limit:
        cut = chunk.rfind(b"\n", start, start + limit) + 1
        if cut <= start:  # one line longer than the limit: up to its own newline
            cut = chunk.find(b"\n", start + limit) + 1 or end
        out.append(chunk[start:cut])
        start = cut
    if start < end:
        out.append(chunk[start:])
    return out


def make_redactor(spec: AppSpec) -> Any:
    """The app's redactor, or None when ``redact = false``."""
    if not spec.redact:
        return None
    keys, patterns = spec.redact_keys, spec.redact_patterns
    from corral.app.redact import Redactor, default_redactor

    return Redactor(keys, patterns) if keys or patterns else default_redactor()


def make_sink(spec: AppSpec, index: int, stream: str, f: Writable) -> Sink:
    """The function a pipe reader calls with each chunk of complete lines of one stream."""
    redactor = make_redactor(spec)
    redact = redactor.redact_bytes if redactor is not None else None
    clock = make_clock(spec.log_date_format)
    write, now_of = f.write, time.time
    if spec.log_type == "json":
        head = json_head(spec.name, index, stream)

        def json_sink(chunk: bytes) -> None:
            if redact is not None:
                chunk = redact(chunk)
            now = now_of()
            ts = clock(now)
            for piece in pieces(chunk, piece_limit(f.policy.max_size)):
                write(json_lines(piece, ts, head), now)

        return json_sink
    if not spec.time:

        def plain_sink(chunk: bytes) -> None:
            if not chunk.isascii():
                chunk = valid_utf8(chunk)
            if redact is not None:
                chunk = redact(chunk)
            now = now_of()
            for piece in pieces(chunk, piece_limit(f.policy.max_size)):
                write(piece, now)

        return plain_sink

    write_stamped = f.write_stamped

    def stamped_sink(chunk: bytes) -> None:
        if not chunk.isascii():
            chunk = valid_utf8(chunk)
        if redact is not None:
            chunk = redact(chunk)
        now = now_of()
        stamp = (clock(now) + " ").encode()
        limit = piece_limit(f.policy.max_size)
        if len(chunk) <= limit:
            write_stamped(stamp, chunk.replace(b"\n", b"\n" + stamp), now)
            return
        for piece in pieces(chunk, limit):  # so a file never passes log_max_size by a whole read
            write_stamped(stamp, piece.replace(b"\n", b"\n" + stamp), now)

    return stamped_sink
