"""Listening sockets the daemon binds once and hands to instances (systemd's LISTEN_FDS).

TCP addresses get one ``SO_REUSEPORT`` socket per instance slot: the kernel
spreads connections over the slots (one socket shared by asyncio workers is
not balanced: the first to wake takes every keep-alive connection), and a
slot's socket stays open while its instance is restarted or replaced, so
connections queue instead of being refused.  A Unix socket is one socket
shared by every slot.  Port 0 binds a free port once; every slot then binds
that same port, and ``describe`` shows it.

Node apps in cluster mode also get addresses nobody declared: the port their code listens on
(:meth:`SocketRegistry.claim`, asked by corral's Node preload), bound the same way, per slot.
"""

from __future__ import annotations

import errno
import os
import socket
import stat

from corral.config.addresses import parse_listen
from corral.exceptions import OperationFailed

BACKLOG = 1024


class BindError(OperationFailed):
    """A listen address could not be bound; the message names the app and address."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.errno = code  # the bind's errno, when it failed in the kernel


class SocketRegistry:
    def __init__(self) -> None:
        self._sockets: dict[tuple[str, str, int], socket.socket] = {}
        self._ports: dict[tuple[str, str], int] = {}
        self._unix_paths: dict[str, str] = {}  # path -> app that created it
        self._owner: dict[str, str] = {}  # address -> app
        self._claimed: dict[int, str] = {}  # port -> the app whose Node code listens there (claim)

    def fds(self, app: str, addresses: list[str], slot: int) -> list[int]:
        """File descriptors of APP's sockets for SLOT, binding what is not bound yet."""
        return [self._get(app, address, slot).fileno() for address in addresses]

    def resolved(self, app: str, addresses: list[str]) -> list[str]:
        """The addresses with port 0 replaced by the port actually bound."""
        out = []
        for address in addresses:
            kind, host, where = parse_listen(address)
            port = self._ports.get((app, address))
            if kind == "tcp" and port is not None:
                out.append(f"tcp://[{host}]:{port}" if ":" in host else f"tcp://{host}:{port}")
            else:
                out.append(address)
        return out

    def _get(self, app: str, address: str, slot: int) -> socket.socket:
        owner = self._owner.get(address) if not address.endswith(":0") else None  # port 0: any free port
        if owner is not None and owner != app:
            raise BindError(f'cannot listen on {address} for app "{app}": app "{owner}" already listens there')
        kind, host, where = parse_listen(address)
        key = (app, address, slot if kind == "tcp" else 0)
        sock = self._sockets.get(key)
        if sock is None:
            claimed = self._claimed.get(int(where)) if kind == "tcp" else None
            if claimed is not None and claimed != app:  # the kernel would let every SO_REUSEPORT bind share it
                raise BindError(f'cannot listen on {address} for app "{app}": app "{claimed}" listens on port {where}',
                                errno.EADDRINUSE)
            try:
                sock = self._bind_tcp(app, address, host, int(where)) if kind == "tcp" else self._bind_unix(app, str(where))
            except OSError as exc:
                raise BindError(f'cannot listen on {address} for app "{app}": {exc.strerror or exc}',
                                exc.errno) from None
            self._sockets[key] = sock
            self._owner.setdefault(address, app)
        return sock

    def _bind_tcp(self, app: str, address: str, host: str, port: int) -> socket.socket:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            # accepted connections inherit TCP_NODELAY; servers handed a socket by fd (uvicorn --fd
            # wraps it as AF_UNIX, so asyncio never sets it) would otherwise wait on Nagle + delayed
            # ACKs: ~40 ms per keep-alive response
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if family == socket.AF_INET6 and host == "::":
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)  # IPv4 too, as Node's listen(port)
            sock.bind((host, self._ports.get((app, address), port)))
            sock.listen(BACKLOG)
        except OSError:
            sock.close()
            raise
        self._ports[(app, address)] = sock.getsockname()[1]
        return sock

    def _bind_unix(self, app: str, path: str) -> socket.socket:
        if os.path.exists(path):
            if not stat.S_ISSOCK(os.stat(path).st_mode):
                raise OSError(0, f"{path} exists and is not a socket")
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(path)
                raise OSError(0, "another process listens there")
            except ConnectionRefusedError:
                os.unlink(path)  # a stale socket file
            finally:
                probe.close()
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(path)
            sock.listen(BACKLOG)
        except OSError:
            sock.close()
            raise
        self._unix_paths[path] = app
        return sock

    def claim(self, app: str, host: str, port: int, slot: int) -> tuple[str, int]:
        """(address, fd) of APP's socket for SLOT on HOST:PORT, bound now if it is not yet: what a
        Node instance in cluster mode asked for.  Raises ``BindError`` with the ``errno`` the
        app would have got binding it itself (EADDRINUSE when another app holds the port)."""
        address = f"tcp://[{host}]:{port}" if ":" in host else f"tcp://{host}:{port}"
        if any(p == port and a != app for (a, _), p in self._ports.items()):
            raise BindError(f'cannot listen on {address} for app "{app}": another app listens on port {port}',
                            errno.EADDRINUSE)
        fd = self._get(app, address, slot).fileno()
        self._claimed[port] = app
        return address, fd

    def holds(self, app: str, address: str, slot: int) -> bool:
        return (app, address, slot) in self._sockets

    def release_address(self, app: str, address: str) -> None:
        """Close every slot's socket of one address (an inferred address the app no longer has)."""
        for key in [k for k in self._sockets if k[0] == app and k[1] == address]:
            self._sockets.pop(key).close()
        port = self._ports.pop((app, address), None)
        if self._owner.get(address) == app:
            del self._owner[address]
        if port is not None and self._claimed.get(port) == app and port not in {
                p for (a, _), p in self._ports.items() if a == app}:
            del self._claimed[port]

    def release_slot(self, app: str, slot: int) -> None:
        """Close the per-slot sockets of a slot that is gone for good (scale down)."""
        for key in [k for k in self._sockets if k[0] == app and k[2] == slot and k[2] != 0]:
            self._sockets.pop(key).close()

    def release_app(self, app: str) -> None:
        for key in [k for k in self._sockets if k[0] == app]:
            self._sockets.pop(key).close()
        for address in [a for a, owner in self._owner.items() if owner == app]:
            del self._owner[address]
        for port_key in [k for k in self._ports if k[0] == app]:
            del self._ports[port_key]
        for port in [p for p, owner in self._claimed.items() if owner == app]:
            del self._claimed[port]
        for path in [p for p, owner in self._unix_paths.items() if owner == app]:
            del self._unix_paths[path]
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

    def close_all(self) -> None:
        for app in {k[0] for k in self._sockets}:
            self.release_app(app)


def enable_request_migration() -> bool:
    """Ask Linux to move queued connections of a closed listener to the others of its
    SO_REUSEPORT group (net.ipv4.tcp_migrate_req, Linux 5.14+; needs root)."""
    try:
        with open("/proc/sys/net/ipv4/tcp_migrate_req", "r+") as f:
            if f.read().strip() != "1":
                f.seek(0)
                f.write("1")
        return True
    except OSError:
        return False
