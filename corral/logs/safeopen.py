"""Log files opened safely: by name, relative to a folder held open, never through a link.

A root daemon writes log files in folders an app's user may be able to write (an ``out_file``
in that user's home).  That user could swap a log file for a symbolic link to a root-only file,
or a hard link to one, and have the daemon append, truncate or create through it.  So:

* a folder is opened once (:class:`Folders`) and every name in it is opened, created, linked,
  renamed and deleted *relative to that descriptor* (``dir_fd``), so a folder swapped for a link
  after the first open changes nothing;
* every open has ``O_NOFOLLOW`` (a link, dangling or not, is refused: nothing is created,
  truncated or appended through it) and ``O_NONBLOCK`` (a FIFO never blocks the daemon);
* a new file is created ``O_EXCL`` with mode 0600 and handed to the app's user (``fchown`` on
  the descriptor) when the app runs as another user;
* an existing file must be a regular file with one link (or the twin of one of its own rotated
  files, left by a rotation a killed daemon did not finish), or a character device such as
  ``/dev/null``, written as it is: never rotated, truncated or chowned.

Each refusal is a :class:`LogFileError` with one line naming the file.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import stat
from dataclasses import dataclass

from corral.exceptions import OperationFailed
from corral.logs.rotation import rotated_files

log = logging.getLogger("corral.daemon")
Owner = tuple[int, int]  # uid, gid of the app's user; None: the daemon's own
WRITE = os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY
READ = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY
TRUNCATE = os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY


class LogFileError(OperationFailed):
    """A log file corral will not write (a link, a folder, a FIFO ...); the message says which and why."""


@dataclass
class Opened:
    fd: int
    regular: bool  # False: a character device (no rotation, no truncation)
    size: int
    mtime: float


def describe_error(path: str, exc: BaseException) -> str:
    if isinstance(exc, ValueError):  # an embedded NUL
        return f"log file {path!r}: {exc}"
    code = getattr(exc, "errno", None)
    if code == errno.ELOOP:
        return f"log file {path} is a symbolic link: corral does not write through links"
    if code == errno.EISDIR:
        return f"log file {path} is a folder"
    if code == errno.ENXIO:
        return f"log file {path} is not a regular file (a FIFO or a socket)"
    return f"cannot open log file {path}: {getattr(exc, 'strerror', None) or exc}"


def open_log(dir_fd: int, name: str, path: str, owner: Owner | None) -> Opened:
    """Open (or create) ``name`` in the folder ``dir_fd`` for appending; ``path`` is for messages."""
    for _ in range(3):  # the name may come and go between the two opens: try again
        try:
            fd = os.open(name, WRITE | os.O_CREAT | os.O_EXCL, 0o600, dir_fd=dir_fd)
        except FileExistsError:
            created = False
        except (OSError, ValueError) as exc:
            raise LogFileError(describe_error(path, exc)) from None
        else:
            created = True
        if not created:
            try:
                fd = os.open(name, WRITE, dir_fd=dir_fd)
            except FileNotFoundError:
                continue
            except (OSError, ValueError) as exc:
                raise LogFileError(describe_error(path, exc)) from None
        try:
            return _checked(fd, dir_fd, name, path, owner if created else None)
        except BaseException:
            os.close(fd)
            raise
    raise LogFileError(f"log file {path} keeps disappearing")


def _checked(fd: int, dir_fd: int, name: str, path: str, owner: Owner | None) -> Opened:
    st = os.fstat(fd)
    if stat.S_ISCHR(st.st_mode):
        _blocking(fd)
        return Opened(fd, False, 0, st.st_mtime)
    if not stat.S_ISREG(st.st_mode):
        raise LogFileError(f"log file {path} is not a regular file")
    if st.st_nlink > 1 and not _rotated_twin(dir_fd, name, st):
        raise LogFileError(f"log file {path} has {st.st_nlink} hard links: corral does not write through links")
    if owner is not None and (st.st_uid, st.st_gid) != owner:
        os.fchown(fd, *owner)
    _blocking(fd)
    return Opened(fd, True, st.st_size, st.st_mtime)


def _blocking(fd: int) -> None:
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    fcntl.fcntl(fd, fcntl.F_SETFL, flags & ~os.O_NONBLOCK)


def _rotated_twin(dir_fd: int, name: str, st: os.stat_result) -> bool:
    """True when a second link of this file is one of its rotated names (a rotation of ours,
    linked but not yet renamed when the daemon died)."""
    for f in rotated_files(name, os.listdir(dir_fd)):
        other = stat_at(dir_fd, os.path.basename(f.path))
        if other is not None and (other.st_dev, other.st_ino) == (st.st_dev, st.st_ino):
            return True
    return False


def stat_at(dir_fd: int, name: str) -> os.stat_result | None:
    """``lstat`` of ``name`` in the folder (a link is not followed); None when it does not exist."""
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def unlink_at(dir_fd: int, name: str, path: str) -> bool:
    """Delete ``name`` (a link is deleted, never what it points to); False when it was not there."""
    try:
        os.unlink(name, dir_fd=dir_fd)
        return True
    except FileNotFoundError:
        return False
    except OSError as exc:
        log.warning("cannot delete %s: %s", path, exc)
        return False


def truncate_at(dir_fd: int, name: str, path: str) -> bool:
    """Empty an existing regular file (``corral flush`` of a file no instance writes now); a link,
    a device or a missing file is left alone.  True when a file was emptied."""
    try:
        fd = os.open(name, TRUNCATE, dir_fd=dir_fd)
    except FileNotFoundError:
        return False
    except OSError as exc:
        log.warning("not emptied: %s", describe_error(path, exc))
        return False
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or (st.st_nlink > 1 and not _rotated_twin(dir_fd, name, st)):
            log.warning("not emptied: log file %s is not a regular file with one link", path)
            return False
        os.ftruncate(fd, 0)
        return True
    finally:
        os.close(fd)


class Folders:
    """Folders of log files, each opened once (``O_DIRECTORY``) and shared by the files in it."""

    def __init__(self) -> None:
        self._fds: dict[str, list[int]] = {}  # path -> [fd, users]

    def acquire(self, folder: str, path: str, owner: Owner | None = None) -> int:
        """The folder's descriptor; missing folders are created 0700 (for ``owner`` when given)."""
        entry = self._fds.get(folder)
        if entry is None:
            try:
                _make_folders(folder, owner)
                fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            except (OSError, ValueError) as exc:
                raise LogFileError(f"log file {path}: cannot use its folder {folder}: "
                                   f"{getattr(exc, 'strerror', None) or exc}") from None
            entry = self._fds[folder] = [fd, 0]
        entry[1] += 1
        return entry[0]

    def release(self, folder: str) -> None:
        entry = self._fds.get(folder)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] <= 0:
            del self._fds[folder]
            os.close(entry[0])


def _make_folders(folder: str, owner: Owner | None) -> None:
    """``mkdir -p`` with mode 0700, each folder it creates handed to ``owner`` (never following a link)."""
    missing = []
    while folder and not os.path.isdir(folder):
        missing.append(folder)
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    for path in reversed(missing):
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            continue
        if owner is not None:
            os.chown(path, *owner, follow_symlinks=False)


def gzip_at(dir_fd: int, name: str, level: int) -> str | None:
    """``name`` -> ``name.gz`` in the folder, then ``name`` deleted; the copy keeps the owner.
    Returns the new name, or None when the file is gone (pruned or flushed meanwhile) or is not
    a regular file.  ``dir_fd`` belongs to the caller."""
    import gzip
    import shutil

    try:
        src = os.open(name, READ, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    tmp, final = name + ".gz.tmp", name + ".gz"
    try:
        st = os.fstat(src)
        if not stat.S_ISREG(st.st_mode):
            return None
        _unlink_quietly(dir_fd, tmp)
        dst = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
        with open(dst, "wb") as raw:
            if (st.st_uid, st.st_gid) != (os.geteuid(), os.getegid()):
                os.fchown(dst, st.st_uid, st.st_gid)
            with open(os.dup(src), "rb") as fsrc, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=level) as out:
                shutil.copyfileobj(fsrc, out, 1 << 20)
    except BaseException:
        _unlink_quietly(dir_fd, tmp)
        raise
    finally:
        os.close(src)
    os.replace(tmp, final, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    _unlink_quietly(dir_fd, name)
    return final


def _unlink_quietly(dir_fd: int, name: str) -> None:
    try:
        os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        pass
