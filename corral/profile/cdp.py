"""A small Chrome DevTools protocol client over the Node inspector's WebSocket (standard library).

:func:`open_inspector` enables the inspector of a running Node process (``SIGUSR1``, as ``node
inspect -p`` does), finds the port it listens on (its own listening sockets on loopback), and
connects to the target's ``webSocketDebuggerUrl``.  Only what profiling needs of RFC 6455:
masked text frames out, text/continuation frames in, ping answered, close.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import struct
import time
import urllib.request
from typing import Any
from urllib.parse import urlparse

from corral.exceptions import OperationFailed

#: What a session asks of the app when it ends: close the inspector it opened, a second later, once the
#: session's WebSocket has closed (Node 20 crashed with SIGSEGV in WsHandler::OnCloseFrameWritten when
#: ``inspector.close()`` ran while the close frame of our session was being answered).  The timer is
#: kept in the app (:data:`TAKE_OVER`), so that a session that starts within that second takes it over.
CLOSE_INSPECTOR = ("globalThis.__corralCloseInspector = setTimeout(() => (process.getBuiltinModule ? "
                   "process.getBuiltinModule('inspector') : require('inspector')).close(), 1000).unref()")
#: What a session that found the inspector open asks first: is a close from an earlier session of ours
#: pending?  Then it is cancelled and this session closes the inspector when it ends (without this,
#: the earlier session's close cut the new session: two ``corral profile`` within a second failed).
TAKE_OVER = ("(() => { const t = globalThis.__corralCloseInspector; globalThis.__corralCloseInspector = undefined;"
             " if (t) clearTimeout(t); return Boolean(t) })()")
CLOSE_WAIT = 2.0  # seconds for the inspector to answer our close frame
MAX_MESSAGE = 1 << 30  # a heap snapshot arrives in chunks; one message is never this big


class InspectorError(OperationFailed):
    """The inspector could not be reached or answered wrongly: one line says why."""


def listening_ports(pid: int) -> list[int]:
    """The TCP ports PID listens on at 127.0.0.1 (from /proc: its socket inodes, then net/tcp)."""
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
        with open(f"/proc/{pid}/net/tcp", encoding="ascii") as f:
            lines = f.read().splitlines()[1:]
    except OSError:
        return []
    ports = []
    for line in lines:
        parts = line.split()
        local, state, inode = parts[1], parts[3], parts[9]
        if state == "0A" and inode in inodes and local.startswith("0100007F:"):
            ports.append(int(local.split(":")[1], 16))
    return sorted(ports)


def _targets(port: int, timeout: float) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=timeout) as response:  # noqa: S310
        found = json.loads(response.read())
    return [t for t in found if isinstance(t, dict) and t.get("webSocketDebuggerUrl")]


def find_inspector(pid: int, before: set[int], deadline: float) -> str:
    """The WebSocket URL of PID's inspector, waiting until DEADLINE (monotonic) for it to open."""
    while True:
        for port in listening_ports(pid):
            if port in before:
                continue
            try:
                targets = _targets(port, max(0.1, deadline - time.monotonic()))
            except (OSError, ValueError):
                continue
            if targets:
                return str(targets[0]["webSocketDebuggerUrl"])
        if time.monotonic() >= deadline:
            raise InspectorError(f"pid {pid} opened no inspector on SIGUSR1 (it handles SIGUSR1 itself, runs with "
                                 "--disable-sigusr1, or port 9229 is taken): start it with --inspect=127.0.0.1:0")
        time.sleep(0.05)


def open_inspector(pid: int, timeout: float = 5.0) -> Session:
    """Enable PID's inspector (SIGUSR1, unless it listens already) and connect to it."""
    before = set(listening_ports(pid))
    deadline = time.monotonic() + timeout
    for port in before:  # an inspector already open (--inspect, or an earlier profile)
        try:
            targets = _targets(port, 1.0)
        except (OSError, ValueError):
            continue
        if targets:
            session = Session(str(targets[0]["webSocketDebuggerUrl"]), timeout)
            try:
                taken = session.call("Runtime.evaluate", {"expression": TAKE_OVER, "returnByValue": True})
            except BaseException:
                session.sock.close()
                raise
            session.opened = taken.get("result", {}).get("value") is True
            return session
    try:
        os.kill(pid, signal.SIGUSR1)
    except ProcessLookupError:
        raise InspectorError(f"pid {pid} is gone") from None
    except PermissionError:
        raise InspectorError(f"not allowed to signal pid {pid} (another user's process)") from None
    session = Session(find_inspector(pid, set(), deadline), timeout)
    session.opened = True  # closed again when done: an open inspector lets any local user run code in it
    return session


class Session:
    """One WebSocket to one inspector target; :meth:`call` sends a method and returns its result."""

    def __init__(self, url: str, timeout: float) -> None:
        where = urlparse(url)
        self.sock = socket.create_connection((where.hostname or "127.0.0.1", where.port or 80), timeout=timeout)
        self.next_id = 0
        self.opened = False
        key = base64.b64encode(os.urandom(16)).decode()
        request = (f"GET {where.path} HTTP/1.1\r\nHost: {where.hostname}:{where.port}\r\nUpgrade: websocket\r\n"
                   f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
        self.sock.sendall(request.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise InspectorError("the inspector closed the connection during the handshake")
            head += chunk
        head, _, self.buffer = head.partition(b"\r\n\r\n")
        status = head.split(b"\r\n", 1)[0].decode(errors="replace")
        if " 101 " not in status:
            raise InspectorError(f"the inspector refused the WebSocket: {status}")

    def close(self) -> None:
        try:
            if self.opened:  # after this reply: the inspector stops listening
                self.call("Runtime.evaluate", {"expression": CLOSE_INSPECTOR})
            self._send(b"\x03\xe8", opcode=8)
            self._closing_handshake()
        except (OSError, InspectorError, ValueError):
            pass
        self.sock.close()

    def _closing_handshake(self) -> None:
        """Read until the inspector's own close frame or the end of the connection (RFC 6455 5.5.1),
        so the socket is closed after the inspector is done with it."""
        self.sock.settimeout(CLOSE_WAIT)
        try:
            while True:
                self._receive()  # raises at the close frame or the end
        except InspectorError:
            return

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def settimeout(self, seconds: float) -> None:
        self.sock.settimeout(seconds)

    def call(self, method: str, params: dict[str, Any] | None = None,
             on_event: Any = None) -> dict[str, Any]:
        """Send METHOD and wait for its answer; events that arrive meanwhile go to ON_EVENT."""
        self.next_id += 1
        wanted = self.next_id
        self._send(json.dumps({"id": wanted, "method": method, "params": params or {}}).encode())
        while True:
            message = json.loads(self._receive())
            if message.get("id") == wanted:
                if "error" in message:
                    raise InspectorError(f"{method}: {message['error'].get('message', message['error'])}")
                return dict(message.get("result") or {})
            if on_event is not None and "method" in message:
                on_event(message["method"], message.get("params") or {})

    def wait_event(self, method: str, seconds: float, on_event: Any = None) -> dict[str, Any] | None:
        """The params of the next METHOD event within SECONDS (others go to ON_EVENT), or None."""
        deadline = time.monotonic() + seconds
        try:
            while True:
                self.sock.settimeout(max(0.01, deadline - time.monotonic()))
                message = json.loads(self._receive())
                if message.get("method") == method:
                    return dict(message.get("params") or {})
                if on_event is not None and "method" in message:
                    on_event(message["method"], message.get("params") or {})
        except TimeoutError:
            return None

    def _send(self, payload: bytes, opcode: int = 1) -> None:
        mask = os.urandom(4)
        size = len(payload)
        if size < 126:
            header = struct.pack("!BB", 0x80 | opcode, 0x80 | size)
        elif size < 1 << 16:
            header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, size)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def _read(self, n: int) -> bytes:
        while len(self.buffer) < n:
            chunk = self.sock.recv(max(65536, n - len(self.buffer)))
            if not chunk:
                raise InspectorError("the inspector closed the connection")
            self.buffer += chunk
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def _receive(self) -> bytes:
        parts: list[bytes] = []
        while True:
            first, second = self._read(2)
            opcode, size = first & 0x0F, second & 0x7F
            if size == 126:
                size = struct.unpack("!H", self._read(2))[0]
            elif size == 127:
                size = struct.unpack("!Q", self._read(8))[0]
            if size > MAX_MESSAGE:
                raise InspectorError("the inspector sent a message too large to take")
            mask = self._read(4) if second & 0x80 else b""
            payload = self._read(size)
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            if opcode == 8:
                raise InspectorError("the inspector closed the connection")
            if opcode == 9:
                self._send(payload, opcode=10)
                continue
            if opcode in (0, 1, 2):
                parts.append(payload)
                if first & 0x80:
                    return b"".join(parts)
