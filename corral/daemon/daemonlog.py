"""``daemon.log`` rotates like an app's log: by size, keeping a few.

The daemon's stderr (and stdout) is ``CORRAL_HOME/daemon.log``, opened by the CLI that started
it.  Before each line the daemon logs (a filter on its log handler), once the file has passed
``CORRAL_DAEMON_LOG_MAX_SIZE`` (default 10 MB), the daemon rotates it as app logs rotate
(:class:`corral.logs.files.RotatingFile`: a hard link then a rename, by name in the home's
folder descriptor, never through a link; the new file 0600): ``daemon.log`` becomes
``daemon__<date>_<time>.log`` and descriptors 2 and 1 are pointed at the new file (``dup2``), so
every later write lands there, whoever makes it.  The ``CORRAL_DAEMON_LOG_RETAIN`` newest
rotated files are kept (default 5).  Nothing is lost: the rotated files and the current one
hold every line.  A rotation that fails (a full disk) is tried again a minute later.

Only a daemon whose stderr *is* that file rotates it (one started by systemd writes to the
journal, which rotates itself).
"""

from __future__ import annotations

import logging
import os
import stat
import sys
import time
from typing import Mapping

from corral.logs.files import Compressor, RotatingFile
from corral.logs.rotation import RotationPolicy
from corral.logs.safeopen import LogFileError, stat_at

MAX_SIZE_VAR = "CORRAL_DAEMON_LOG_MAX_SIZE"
RETAIN_VAR = "CORRAL_DAEMON_LOG_RETAIN"
DEFAULT_MAX_SIZE = 10 * 1024 * 1024  # "10MB", as sizes are read (base 1024)
DEFAULT_RETAIN = 5
MIN_SIZE = 1024
MAX_RETAIN = 1000
RETRY_AFTER = 60.0


def settings(environ: Mapping[str, str] | None = None) -> tuple[int, int] | str:
    """(max size in bytes, 0 = never; rotated files kept) from the environment, or one line
    saying what is wrong with it (the daemon refuses to start, as for ``CORRAL_MAX_INSTANCES``)."""
    env = os.environ if environ is None else environ
    size, retain = DEFAULT_MAX_SIZE, DEFAULT_RETAIN
    raw = env.get(MAX_SIZE_VAR, "").strip()
    if raw:
        from corral.units import parse_size  # only when set: the daemon does not load it otherwise

        try:
            size = parse_size(raw)
        except ValueError:
            size = -1
        if size != 0 and not MIN_SIZE <= size <= 1024**4:
            return f'{MAX_SIZE_VAR}: "{raw[:40]}" is not a size from 1KB to 1TB (or 0: never rotate)'
    raw = env.get(RETAIN_VAR, "").strip()
    if raw:
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 4 and 1 <= int(raw) <= MAX_RETAIN):
            return f'{RETAIN_VAR}: "{raw[:40]}" is not a number of files from 1 to {MAX_RETAIN}'
        retain = int(raw)
    return size, retain


class DaemonLog(logging.Filter):
    """The filter that rotates ``daemon.log`` before a line would be written past the limit; the
    rotating file is made at the first rotation (nothing held until then)."""

    def __init__(self, root: str, max_size: int, retain: int) -> None:
        super().__init__()
        self.root = root
        self.max_size = max_size
        self.retain = retain
        self.file: RotatingFile | None = None
        self.fds = [2]
        self._retry_at = 0.0
        self._busy = False

    def filter(self, record: logging.LogRecord) -> bool:
        self.check()
        return True

    def check(self, now: float | None = None) -> str | None:
        """Rotate when the file has reached the limit; returns the rotated file's path, if any."""
        if self._busy:  # a line logged by the rotation itself
            return None
        try:
            size = os.fstat(2).st_size
        except OSError:
            return None
        now = time.time() if now is None else now
        if size < self.max_size or now < self._retry_at:
            return None
        self._busy = True
        try:
            target = self._rotate(now)
        finally:
            self._busy = False
        if target is None:  # said once in the log by the rotation; again in a while
            self._retry_at = now + RETRY_AFTER
        return target

    def _rotate(self, now: float) -> str | None:
        if self.file is None:
            self.file = self._open()
            if self.file is None:
                return None
        for stream in (sys.stderr, sys.stdout):
            try:
                stream.flush()
            except (OSError, ValueError, AttributeError):
                pass
        target = self.file.rotate(now)
        if target is not None:
            for fd in self.fds:
                os.dup2(self.file.fd, fd)
        return target

    def _open(self) -> RotatingFile | None:
        """``daemon.log`` as a rotating file, when it is our stderr (else the filter stops looking)."""
        try:
            err = os.fstat(2)
            dir_fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            self.max_size = 1 << 62
            return None
        try:
            st = stat_at(dir_fd, "daemon.log")
            if st is None or not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != (err.st_dev, err.st_ino):
                raise LogFileError("stderr is not daemon.log")
            policy = RotationPolicy(max_size=self.max_size, schedule=None, retain=self.retain, max_age=None,
                                    compress=False)
            file = RotatingFile(os.path.join(self.root, "daemon.log"), policy, Compressor(), dir_fd)
        except (OSError, LogFileError):
            os.close(dir_fd)
            self.max_size = 1 << 62  # not ours to rotate: never again
            return None
        if _same(1, err):
            self.fds.append(1)
        return file


def install(root: str, handler: logging.Handler, max_size: int, retain: int) -> DaemonLog | None:
    """Rotate ``root/daemon.log`` from ``handler`` (when it turns out to be this process's stderr)."""
    if not max_size:
        return None
    rotation = DaemonLog(root, max_size, retain)
    handler.addFilter(rotation)
    return rotation


def _same(fd: int, st: os.stat_result) -> bool:
    try:
        other = os.fstat(fd)
    except OSError:
        return False
    return (other.st_dev, other.st_ino) == (st.st_dev, st.st_ino)
