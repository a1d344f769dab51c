"""Process groups: signal a whole group, notice when it is empty, end leftovers.

Every instance runs in its own process group, so stopping an instance means
stopping every process in that group, grandchildren included.
"""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Callable

from corral.process import procfs

POLL_INTERVAL = 0.05


def signal_group(pgid: int, sig: str | int) -> bool:
    """Send SIG to every process of the group; False if the group is gone."""
    number = sig if isinstance(sig, int) else signal.Signals[sig].value
    try:
        os.killpg(pgid, number)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class GroupWatcher:
    """Calls back once a process group has no live member left.

    Checked on every child exit (``poke``) and, while any group is watched, on a
    short timer for members that are not our children.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._watched: dict[int, list[Callable[[], None]]] = {}
        self._timer: asyncio.TimerHandle | None = None

    def watch(self, pgid: int, callback: Callable[[], None]) -> None:
        self._watched.setdefault(pgid, []).append(callback)
        self._arm()

    def poke(self) -> None:
        if not self._watched:
            return
        alive = procfs.live_groups(set(self._watched))
        for pgid in [p for p in self._watched if p not in alive]:
            for callback in self._watched.pop(pgid):
                callback()
        self._arm()

    def _arm(self) -> None:
        if self._watched and self._timer is None:
            self._timer = self._loop.call_later(POLL_INTERVAL, self._tick)

    def _tick(self) -> None:
        self._timer = None
        self.poke()

    def terminate(self, pgid: int, sig: str, kill_timeout: float) -> None:
        """End what is left of a group: SIG now, SIGKILL after ``kill_timeout``."""
        if not signal_group(pgid, sig):
            return
        handle = self._loop.call_later(kill_timeout, signal_group, pgid, "SIGKILL")
        self.watch(pgid, handle.cancel)

    async def wait_gone(self, pgid: int) -> None:
        future: asyncio.Future[None] = self._loop.create_future()
        self.watch(pgid, lambda: future.done() or future.set_result(None))
        await future
