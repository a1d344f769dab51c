"""The small library a managed program may import (optional; standard library only).

- ``ready()``, ``status(text)``, ``watchdog()``, ``stopping()``: systemd's sd_notify
  protocol over ``NOTIFY_SOCKET``, so readiness works the same under corral and systemd;
  each is a no-op when the program does not run under either.
- ``listen()``: the sockets handed over with ``LISTEN_FDS`` (socket activation).
"""

from __future__ import annotations

import os
import socket

__all__ = ["listen", "notify", "ready", "status", "stopping", "watchdog"]
FIRST_FD = 3


def notify(message: str) -> bool:
    """Send one sd_notify datagram; False when there is nobody to tell."""
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return False
    if path.startswith("@"):
        path = "\0" + path[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        try:
            sock.sendto(message.encode(), path)
        except OSError:
            return False
    return True


def ready() -> bool:
    """Tell the supervisor this instance is ready to serve."""
    return notify("READY=1")


def status(text: str) -> bool:
    """A one-line status shown by ``corral describe``."""
    return notify(f"STATUS={text}")


def watchdog() -> bool:
    """Keep-alive for ``watchdog = "30s"``: call it more often than that."""
    return notify("WATCHDOG=1")


def stopping() -> bool:
    return notify("STOPPING=1")


def listen() -> list[socket.socket]:
    """The listening sockets passed by the supervisor (empty when there are none).

    Follows systemd's ``sd_listen_fds``: only when ``LISTEN_PID`` is this process.
    """
    if os.environ.get("LISTEN_PID") != str(os.getpid()):
        return []
    count = int(os.environ.get("LISTEN_FDS", "0") or 0)
    sockets = []
    for fd in range(FIRST_FD, FIRST_FD + count):
        os.set_inheritable(fd, False)
        sockets.append(socket.socket(fileno=fd))
    return sockets


def _install_heap_handler() -> None:
    if os.environ.get("CORRAL_PROFILE_DIR"):  # only under corral: `corral profile heap` asks by SIGUSR2
        from corral.app import heap

        heap.install()


_install_heap_handler()
