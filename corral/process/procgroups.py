"""Process groups: signal a whole group, notice when it is empty.

Every instance runs in its own process group, so stopping an instance means
stopping every process in that group, grandchildren included.
"""

from __future__ import annotations

import asyncio
import os
import signal
from typing import TYPE_CHECKING, Callable

from corral.process import procfs

if TYPE_CHECKING:  # types only: each typing object costs the daemon memory
    from typing import Protocol, TypeVar

    class _Cancellable(Protocol):
        def cancel(self) -> None: ...

    H = TypeVar("H", bound=_Cancellable, covariant=True)

    class Timers(Protocol[H]):
        """The daemon's timer service (``corral.daemon.timers``), as far as this module needs it."""

        def after(self, delay: float, fn: Callable[[], object]) -> H: ...

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


def terminate(timers: Timers[H], pgid: int, sig: str, kill_timeout: float, on_kill: Callable[[], None]) -> H:
    """The one kill escalation: SIG to the group now, SIGKILL (then ``on_kill()``) after
    ``kill_timeout`` unless the returned timer is cancelled first."""

    def escalate() -> None:
        if signal_group(pgid, "SIGKILL"):
            on_kill()

    handle = timers.after(kill_timeout, escalate)
    if not signal_group(pgid, sig):
        handle.cancel()  # nothing left to end
    return handle


class GroupWatcher:
    """Calls back once a process group has no live member left.

    Checked on every child exit (``poke``) and, while any group is watched, on a
    short timer (of the daemon's timer service) for members that are not our children.
    """

    def __init__(self, timers: Timers[_Cancellable]) -> None:
        self._timers = timers
        self._watched: dict[int, list[Callable[[], None]]] = {}
        self._timer: _Cancellable | None = None

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
            self._timer = self._timers.after(POLL_INTERVAL, self._tick)

    def _tick(self) -> None:
        self._timer = None
        self.poke()

    def watching(self) -> int:
        return len(self._watched)

    async def wait_gone(self, pgid: int) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def gone() -> None:
            if not future.done():
                future.set_result(None)

        self.watch(pgid, gone)
        await future
