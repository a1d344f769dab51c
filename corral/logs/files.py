"""Log files that rotate themselves, and the per-instance sinks that format lines into them.

The daemon is the only writer of its log files and writes whole lines from the event loop, so:

* rotation renames the file and opens a new one between two writes (never copy + truncate), so
  the lines of the current file plus the rotated ones are exactly the lines written;
* ``corral flush`` truncates an open file between two writes (and deletes the rotated ones);
* compression of rotated files runs on one background thread, off the event loop; pruning
  (``log_retain``, ``log_max_age``) runs after each rotation.

A sink (:func:`make_sink`) takes a chunk of complete lines from a pipe reader and does, per
chunk: invalid UTF-8 -> U+FFFD, redaction (:meth:`corral.app.redact.Redactor.redact_bytes`), one
timestamp for the chunk (or JSON wrapping per line), one ``write``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any, Callable

from corral.logs.format import json_head, json_lines, make_clock, valid_utf8
from corral.logs.rotation import RotationPolicy, rotated_files, rotated_name, to_prune

TYPE_CHECKING = False
if TYPE_CHECKING:
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
    """An append-only log file that rotates by size and/or schedule (see the module docstring)."""

    def __init__(self, path: str, policy: RotationPolicy, compressor: Compressor) -> None:
        self.path = path
        self.policy = policy
        self.users = 0
        self._compressor = compressor
        os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
        self._open(time.time())  # a file left from before a schedule boundary rotates at its first write

    def _open(self, now: float) -> None:
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        st = os.fstat(self.fd)
        self.size = st.st_size
        self.opened_at = st.st_mtime if st.st_size else now  # for a schedule: when its lines began

    def write(self, data: bytes, now: float) -> None:
        if self.policy.should_rotate(self.size, self.opened_at, now, len(data)):
            self.rotate(now)
        write_all(self.fd, data)
        self.size += len(data)

    def write_stamped(self, stamp: bytes, body: bytes, now: float) -> None:
        """Write ``stamp + body[:-len(stamp)]`` without building it: ``body`` is a chunk whose
        newlines were each followed by ``stamp`` (one ``bytes.replace``), so its tail is one
        stamp too many.  One ``writev``, no copy of the chunk."""
        size = len(body)
        if self.policy.should_rotate(self.size, self.opened_at, now, size):
            self.rotate(now)
        written = os.writev(self.fd, [stamp, memoryview(body)[: size - len(stamp)]])
        if written != size:  # a short write (disk full...): finish it the slow way
            write_all(self.fd, (stamp + body[: size - len(stamp)])[written:])
        self.size += size

    def rotate(self, now: float) -> str | None:
        """Rename the file aside and open a fresh one; returns the rotated file's path."""
        taken = {os.path.basename(f.path) for f in rotated_files(self.path)}
        target = rotated_name(self.path, now, taken)
        while os.path.exists(target) or os.path.exists(target + ".gz"):  # never overwrite one
            taken.add(os.path.basename(target))
            target = rotated_name(self.path, now, taken)
        old_fd = self.fd
        try:
            self.fd = self._swap(target)
        except OSError as exc:
            log.warning("cannot rotate %s: %s", self.path, exc)
            self.opened_at = now
            return None
        os.close(old_fd)
        self.size = 0
        self.opened_at = now
        if self.policy.compress:
            self._compressor.submit(target)
        self.prune(now)
        return target

    def _swap(self, target: str) -> int:
        """Move the current file to ``target`` and put an empty one in its place; returns the new
        file's descriptor.  A hard link then a rename, so ``path`` never goes missing (a reader
        that stats it between two steps finds the old file or the new one); a plain rename where
        hard links are not possible."""
        tmp = self.path + ".rotating"
        _unlink(tmp)
        new_fd = os.open(tmp, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            os.link(self.path, target)
            os.rename(tmp, self.path)
            return new_fd
        except OSError:
            os.close(new_fd)
            _unlink(tmp)
            if os.path.exists(target) and os.path.samefile(target, self.path):
                _unlink(target)
        os.rename(self.path, target)
        return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)

    def prune(self, now: float) -> list[str]:
        doomed = to_prune(rotated_files(self.path), now, self.policy.retain, self.policy.max_age)
        for f in doomed:
            _unlink(f.path)
        return [f.path for f in doomed]

    def truncate(self, now: float) -> None:
        """Empty the file (between two writes, so no line is cut) and drop its rotated files."""
        os.ftruncate(self.fd, 0)
        self.size = 0
        self.opened_at = now
        remove_rotated(self.path)

    def close(self) -> None:
        os.close(self.fd)


def remove_rotated(path: str) -> list[str]:
    removed = []
    for f in rotated_files(path):
        if _unlink(f.path):
            removed.append(f.path)
    return removed


def _unlink(path: str) -> bool:
    try:
        os.unlink(path)
        return True
    except FileNotFoundError:
        return False
    except OSError as exc:
        log.warning("cannot delete %s: %s", path, exc)
        return False


class Compressor:
    """Gzips rotated files on one background thread: ``x.log`` -> ``x.log.gz``, then deletes ``x.log``."""

    def __init__(self) -> None:
        import queue  # compression is opt-in: its modules load only when it is used

        self._queue: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self.pending = 0

    def submit(self, path: str) -> None:
        self.pending += 1
        self._queue.put(path)
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="corral-gzip", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        try:  # the lowest CPU priority for this thread only: apps and the event loop come first
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        except (OSError, AttributeError):
            pass
        while True:
            path = self._queue.get()
            try:
                gzip_file(path)
            except Exception as exc:  # noqa: BLE001 - a failed compression keeps the plain file
                log.warning("cannot compress %s: %s", path, exc)
            finally:
                self.pending -= 1


def gzip_file(path: str) -> str | None:
    import gzip
    import shutil

    tmp, final = path + ".gz.tmp", path + ".gz"
    try:
        with open(path, "rb") as src, gzip.open(tmp, "wb", compresslevel=COMPRESS_LEVEL) as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    except FileNotFoundError:  # pruned or flushed meanwhile
        _unlink(tmp)
        return None
    os.chmod(tmp, 0o600)
    os.replace(tmp, final)
    _unlink(path)
    return final


class LogWriters:
    """Open log files by path, reference-counted, so merged instances share one file."""

    def __init__(self) -> None:
        self._files: dict[str, RotatingFile] = {}
        self.compressor = Compressor()

    def acquire(self, path: str, policy: RotationPolicy) -> RotatingFile:
        f = self._files.get(path)
        if f is None:
            f = self._files[path] = RotatingFile(path, policy, self.compressor)
        else:
            f.policy = policy  # the last configuration wins
        f.users += 1
        return f

    def release(self, f: RotatingFile) -> None:
        f.users -= 1
        if f.users <= 0 and self._files.get(f.path) is f:
            del self._files[f.path]
            f.close()

    def flush(self, path: str) -> list[str]:
        """Empty ``path`` (open or not) and delete its rotated files; returns what was touched."""
        now = time.time()
        f = self._files.get(path)
        rotated = [r.path for r in rotated_files(path)]
        if f is not None:
            f.truncate(now)
            return [path, *rotated]
        remove_rotated(path)
        try:
            os.truncate(path, 0)
        except FileNotFoundError:
            return rotated
        return [path, *rotated]


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


def make_sink(spec: AppSpec, index: int, stream: str, f: RotatingFile) -> Sink:
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
