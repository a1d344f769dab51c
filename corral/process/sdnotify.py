"""The daemon's NOTIFY_SOCKET: systemd's sd_notify datagram protocol.

Instances send ``READY=1``, ``STATUS=...``, ``STOPPING=1``, ``WATCHDOG=1`` as
newline-separated assignments in one datagram.  The kernel tells us the
sender's pid (``SO_PASSCRED``), so an instance cannot speak for another one.

The daemon's own socket sits in ``CORRAL_HOME`` (0700), out of reach of an app run as another
user (``user =``).  Such an app gets a socket of its own user (:class:`NotifySockets`):
``/run/corral/<home>/<uid>.sock``, owned by that user and mode 0600, in folders only root can
write and anyone can cross (0711), so no other user can reach or replace it; datagrams on it
count only when the kernel says they come from that uid (and, as on the main socket, from a
process of a managed instance).
"""

from __future__ import annotations

import asyncio
import os
import socket
import stat
import sys
from typing import Callable

Handler = Callable[[int, dict[str, str]], None]
CREDENTIALS_SIZE = 12  # struct ucred: pid, uid, gid; 32 bits each, native order (no struct module: ~0.1 MB)
MAX_DATAGRAM = 4096


def parse(data: bytes) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in data.decode("utf-8", "replace").split("\n"):
        key, sep, value = line.partition("=")
        if sep and key:
            fields[key.strip()] = value
    return fields


def send(path: str, message: str) -> bool:
    """Send MESSAGE (``READY=1``...) to a service manager's NOTIFY_SOCKET at PATH (``@name``: an
    abstract socket), as ``sd_notify`` does; False when it cannot be reached (never raises)."""
    address = "\0" + path[1:] if path.startswith("@") else path
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(message.encode(), address)
    except OSError:
        return False
    return True


class NotifyListener:
    def __init__(self, loop: asyncio.AbstractEventLoop, path: str, handler: Handler,
                 owner: tuple[int, int] | None = None) -> None:
        self.path = path
        self._loop = loop
        self._handler = handler
        self._uid = None if owner is None else owner[0]
        if os.path.lexists(path):
            os.unlink(path)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self._sock.setblocking(False)
        old = os.umask(0o177)
        try:
            self._sock.bind(path)
            if owner is not None:  # 0600 and root's until now: no window where another user can reach it
                os.chown(path, *owner, follow_symlinks=False)
        except BaseException:
            self._sock.close()
            raise
        finally:
            os.umask(old)
        loop.add_reader(self._sock.fileno(), self._read)

    def _read(self) -> None:
        while True:
            try:
                data, ancillary, _, _ = self._sock.recvmsg(MAX_DATAGRAM, socket.CMSG_SPACE(CREDENTIALS_SIZE))
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            pid = uid = None
            for level, kind, payload in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = int.from_bytes(payload[0:4], sys.byteorder, signed=True)
                    uid = int.from_bytes(payload[4:8], sys.byteorder)
            if pid and (self._uid is None or uid == self._uid):
                self._handler(pid, parse(data))

    def close(self) -> None:
        self._loop.remove_reader(self._sock.fileno())
        self._sock.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


RUN_ROOT = "/run/corral"


class NotifySockets:
    """The main NOTIFY_SOCKET, plus one per other user an app runs as (made when first needed)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, path: str, handler: Handler) -> None:
        self._loop = loop
        self._handler = handler
        self.main = NotifyListener(loop, path, handler)
        self.path = path
        st = os.stat(os.path.dirname(path) or ".")
        self._folder = os.path.join(RUN_ROOT, f"{st.st_dev:x}-{st.st_ino:x}")  # one per home, stable
        self._users: dict[int, NotifyListener] = {}  # by uid
        self._files: list[str] = []  # shared_file copies

    def path_for(self, owner: tuple[int, int] | None) -> str:
        """The socket an app running as ``owner`` (uid, gid) can reach; SpawnError when it cannot be made."""
        if owner is None or owner[0] == os.geteuid():
            return self.path
        listener = self._users.get(owner[0])
        if listener is None:
            path = os.path.join(self._folder, f"{owner[0]}.sock")
            try:
                self._make_folders()
                listener = NotifyListener(self._loop, path, self._handler, owner)
            except OSError as exc:
                from corral.process.spawner import SpawnError

                raise SpawnError(f"cannot make the notify socket {path}: {exc.strerror or exc}") from None
            self._users[owner[0]] = listener
        return listener.path

    def shared_file(self, name: str, source: str) -> str:
        """A copy of SOURCE in ``/run/corral/<home>``, root's and readable by every user (the Node
        preload, for apps run as another user who cannot read corral's own copy); OSError if not."""
        path = os.path.join(self._folder, name)
        if path not in self._files:
            self._make_folders()
            with open(source, "rb") as f:
                data = f.read()
            tmp = path + ".tmp"
            if os.path.lexists(tmp):
                os.unlink(tmp)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            with open(fd, "wb") as f:
                f.write(data)
                os.fchmod(f.fileno(), 0o644)
            os.replace(tmp, path)
            self._files.append(path)
        return path

    def _make_folders(self) -> None:
        """``/run/corral/<home>``: root's, 0711 (anyone may cross it, only root may write it)."""
        for folder in (os.path.dirname(RUN_ROOT), RUN_ROOT, self._folder):
            try:
                os.mkdir(folder, 0o755 if folder == "/run" else 0o711)
            except FileExistsError:
                pass
            st = os.lstat(folder)
            if not stat.S_ISDIR(st.st_mode) or st.st_uid != 0 or st.st_mode & 0o022:
                raise OSError(f"{folder} is not a folder of root's that only root can write")  # never used then
            if folder != "/run" and stat.S_IMODE(st.st_mode) != 0o711:
                os.chmod(folder, 0o711)  # ours; a umask such as 077 must not make it uncrossable

    def close(self) -> None:
        self.main.close()
        for listener in self._users.values():
            listener.close()
        for path in self._files:
            try:
                os.unlink(path)
            except OSError:
                pass
        if self._users or self._files:
            try:
                os.rmdir(self._folder)
            except OSError:
                pass
        self._users.clear()
        self._files.clear()
