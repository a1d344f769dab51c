"""Node's IPC channel, the daemon's end: what ``child_process.fork()`` gives a child, without Node.

A Node process whose environment has ``NODE_CHANNEL_FD=N`` takes fd N (one end of a Unix stream
socket pair) as its parent's channel: ``process.send(msg)`` writes ``JSON.stringify(msg) + "\\n"``
(``NODE_CHANNEL_SERIALIZATION_MODE=json``), and the parent's lines arrive as ``'message'`` events,
or as ``'internalMessage'`` when their ``cmd`` starts with ``NODE_``.  A socket travels as
``SCM_RIGHTS`` ancillary data on the line ``{"cmd":"NODE_HANDLE","type":"net.Native","msg":...}``:
Node turns the fd into a handle, answers ``{"cmd":"NODE_HANDLE_ACK"}`` and hands ``msg`` on with
the handle (``lib/internal/child_process.js``).  The channel keeps the child's event loop alive
only while the app listens for ``'message'``, so an app that never does exits as it would anyway.

The daemon reads every line the app sends and looks only at the few it knows (``"ready"`` and
``{"cmd":"NODE_...``): a longer line is skipped unread, descriptors the app sends are closed, and
what the daemon writes waits in a small bounded queue when the app is not reading.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio
    from typing import Callable

    Handler = Callable[[Any], None]  # a message, or None once the channel is closed

ENV = {"NODE_CHANNEL_SERIALIZATION_MODE": "json"}
MAX_LINE = 4096  # corral's own messages are far shorter; longer lines are skipped unread
READ_SIZE = 65536
MAX_FDS = 16  # room for descriptors an app sends (closed at once)
MAX_QUEUED = 65536  # bytes waiting for an app that does not read its channel: beyond, it is closed
ACK = b'{"cmd":"NODE_HANDLE_ACK"}\n'


def encode(message: Any) -> bytes:
    """One line, as Node's ``json`` serialization writes it."""
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def wanted(line: bytes) -> bool:
    """Lines worth parsing: ``process.send('ready')`` and Node's and corral's internal messages."""
    return line == b'"ready"' or line.startswith(b'{"cmd":"NODE_')


class Channel:
    """The daemon's end of one instance's channel, read by the event loop."""

    __slots__ = ("_loop", "_sock", "_handler", "_partial", "_skipping", "_queue", "_queued", "closed")

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket, handler: Handler) -> None:
        self._loop = loop
        self._sock = sock
        self._handler = handler
        self._partial = b""
        self._skipping = False  # inside a line longer than MAX_LINE
        self._queue: list[tuple[bytes, int | None]] = []  # (data, fd to send with it, a dup)
        self._queued = 0
        self.closed = False
        sock.setblocking(False)
        loop.add_reader(sock.fileno(), self._read)

    @staticmethod
    def pair() -> tuple[socket.socket, socket.socket]:
        """(the daemon's end, the child's end): the child's is passed at spawn, then closed here."""
        return socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)

    def _read(self) -> None:
        try:
            data, ancillary, _, _ = self._sock.recvmsg(READ_SIZE, socket.CMSG_SPACE(MAX_FDS * 4))
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data, ancillary = b"", []
        for level, kind, payload in ancillary:  # nothing an app sends is kept
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                for i in range(len(payload) // 4):
                    os.close(int.from_bytes(payload[i * 4:i * 4 + 4], sys.byteorder, signed=True))
        if not data:
            self.close()
            self._handler(None)
            return
        for line in self._lines(data):
            if wanted(line):
                try:
                    message = json.loads(line)
                except ValueError:
                    continue
                if isinstance(message, dict) and message.get("cmd") == "NODE_HANDLE":
                    self.send(ACK)  # an app sent a handle: Node holds its next messages until acked
                    continue
                self._handler(message)
                if self.closed:
                    return

    def _lines(self, data: bytes) -> list[bytes]:
        *complete, rest = data.split(b"\n")
        lines = []
        for line in complete:
            if self._skipping:
                self._skipping = False
            else:
                whole = self._partial + line
                if len(whole) <= MAX_LINE:
                    lines.append(whole)
            self._partial = b""
        if self._skipping or len(self._partial) + len(rest) > MAX_LINE:
            self._partial, self._skipping = b"", True
        else:
            self._partial += rest
        return lines

    def send(self, data: bytes, fd: int | None = None) -> bool:
        """Write DATA (one or more whole lines), with FD as SCM_RIGHTS; False if the channel is
        closed, or was just closed because the app has not read what waited for it."""
        if self.closed:
            return False
        if self._queue:
            return self._enqueue(data, fd)
        try:
            sent = self._sendmsg(data, fd)
        except (BlockingIOError, InterruptedError):
            return self._enqueue(data, fd)
        except OSError:
            return False
        if sent < len(data):
            return self._enqueue(data[sent:], None)
        return True

    def _sendmsg(self, data: bytes, fd: int | None) -> int:
        if fd is None:
            return self._sock.send(data)
        rights = fd.to_bytes(4, sys.byteorder, signed=True)
        return self._sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, rights)])

    def _enqueue(self, data: bytes, fd: int | None) -> bool:
        if self._queued + len(data) > MAX_QUEUED:
            self.close()
            return False
        if not self._queue:
            self._loop.add_writer(self._sock.fileno(), self._flush)
        self._queue.append((data, os.dup(fd) if fd is not None else None))
        self._queued += len(data)
        return True

    def _flush(self) -> None:
        while self._queue:
            data, fd = self._queue[0]
            try:
                sent = self._sendmsg(data, fd)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self.close()
                return
            if fd is not None:
                os.close(fd)
            self._queued -= sent
            if sent < len(data):
                self._queue[0] = (data[sent:], None)
                return
            self._queue.pop(0)
        self._loop.remove_writer(self._sock.fileno())

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        fileno = self._sock.fileno()
        self._loop.remove_reader(fileno)
        if self._queue:
            self._loop.remove_writer(fileno)
        for _, fd in self._queue:
            if fd is not None:
                os.close(fd)
        self._queue.clear()
        self._sock.close()
