"""The daemon's NOTIFY_SOCKET: systemd's sd_notify datagram protocol.

Instances send ``READY=1``, ``STATUS=...``, ``STOPPING=1``, ``WATCHDOG=1`` as
newline-separated assignments in one datagram.  The kernel tells us the
sender's pid (``SO_PASSCRED``), so an instance cannot speak for another one.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
from typing import Callable

Handler = Callable[[int, dict[str, str]], None]
CREDENTIALS = struct.Struct("iII")  # pid, uid, gid
MAX_DATAGRAM = 4096


def parse(data: bytes) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in data.decode("utf-8", "replace").split("\n"):
        key, sep, value = line.partition("=")
        if sep and key:
            fields[key.strip()] = value
    return fields


class NotifyListener:
    def __init__(self, loop: asyncio.AbstractEventLoop, path: str, handler: Handler) -> None:
        self.path = path
        self._loop = loop
        self._handler = handler
        if os.path.exists(path):
            os.unlink(path)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self._sock.setblocking(False)
        old = os.umask(0o177)
        try:
            self._sock.bind(path)
        finally:
            os.umask(old)
        loop.add_reader(self._sock.fileno(), self._read)

    def _read(self) -> None:
        while True:
            try:
                data, ancillary, _, _ = self._sock.recvmsg(MAX_DATAGRAM, socket.CMSG_SPACE(CREDENTIALS.size))
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            pid = None
            for level, kind, payload in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = CREDENTIALS.unpack(payload[: CREDENTIALS.size])[0]
            if pid:
                self._handler(pid, parse(data))

    def close(self) -> None:
        self._loop.remove_reader(self._sock.fileno())
        self._sock.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
