"""Readiness without configuration: notice when an instance starts listening on TCP.

An app that declares neither ``ready`` nor ``listen`` is ready once one of its
processes holds a listening TCP socket (IPv4 or IPv6), seen in /proc: the
listening sockets' inodes from /proc/net/tcp{,6}, matched against the fds of
the instance's process group.  One poll serves every watched instance.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from corral.process import procfs

if TYPE_CHECKING:
    from corral.process.procgroups import Timers, _Cancellable

POLL_INTERVAL = 0.1
LISTEN_STATE = "0A"


def listening_inodes() -> set[int]:
    """Inodes of every listening TCP socket on the machine (this network namespace)."""
    found: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f, None)
                for line in f:
                    fields = line.split()
                    if len(fields) > 9 and fields[3] == LISTEN_STATE:
                        found.add(int(fields[9]))
        except OSError:
            continue
    return found


def socket_inodes(pid: int) -> set[int]:
    """Inodes of the sockets PID holds open."""
    found: set[int] = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return found
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            found.add(int(target[8:-1]))
    return found


@dataclass
class _Watch:
    pgid: int
    on_listen: Callable[[], None]
    wanted: Callable[[], bool]  # False once the instance is ready, gone or replaced


class ListenWatcher:
    """Calls ``on_listen`` once a process of a watched group listens on TCP."""

    def __init__(self, timers: Timers[_Cancellable], interval: float = POLL_INTERVAL) -> None:
        self._timers = timers
        self._interval = interval
        self._watched: list[_Watch] = []
        self._timer: _Cancellable | None = None

    def watch(self, pgid: int, on_listen: Callable[[], None], wanted: Callable[[], bool]) -> None:
        self._watched.append(_Watch(pgid, on_listen, wanted))
        if self._timer is None:
            self._timer = self._timers.after(self._interval, self._poll)

    def _poll(self) -> None:
        self._timer = None
        self._watched = [w for w in self._watched if w.wanted()]
        if not self._watched:
            return
        groups = procfs.live_groups({w.pgid for w in self._watched}, within=os.getpid())
        held = {w.pgid: set().union(*(socket_inodes(m.pid) for m in groups.get(w.pgid, [])))
                for w in self._watched}
        # the tables cost ~2 ms a read on some kernels (they walk the whole socket hash): read
        # them only when a watched process holds a socket at all
        listening = listening_inodes() if any(held.values()) else set()
        heard = [w for w in self._watched if held[w.pgid] & listening]
        self._watched = [w for w in self._watched if w not in heard]
        for w in heard:
            w.on_listen()
        if self._watched:
            self._timer = self._timers.after(self._interval, self._poll)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._watched.clear()
