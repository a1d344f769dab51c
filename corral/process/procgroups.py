"""Ending an instance: signal its whole tree, notice when it is empty.

Every instance runs in its own process group, so stopping an instance means stopping every
process in that group, grandchildren included, and every process that left the group
(:mod:`corral.process.tracking` finds them by cgroup or marker).
"""

from __future__ import annotations

import asyncio
import os
import signal
from typing import TYPE_CHECKING, Callable


if TYPE_CHECKING:  # types only: each typing object costs the daemon memory
    from corral.process.tracking import Proc, Tracker, Tree
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


def terminate(timers: Timers[H], tracker: Tracker, tree: Tree, sig: str | None, kill_timeout: float,
              on_kill: Callable[[], None], members: list[Proc] | None = None) -> H:
    """The one kill escalation: SIG to every process of the tree now (its group and whatever left
    the group; None: no signal, the app was asked another way), SIGKILL (then ``on_kill()``) after
    ``kill_timeout`` unless the returned timer is cancelled first.  ``members``: the tree's
    processes, when the caller has just looked."""

    def escalate() -> None:
        tree.killing = True
        if tracker.signal(tree, "SIGKILL"):
            on_kill()

    handle = timers.after(kill_timeout, escalate)
    if sig is not None and not tracker.signal(tree, sig, members):
        handle.cancel()  # nothing left to end
    return handle


class GroupWatcher:
    """Calls back once a tree (an instance's process group, and whatever left it) has no live
    member left.

    Checked on every child exit (``poke``) and, while any tree is watched, on a short timer (of
    the daemon's timer service) for members that are not our children.  A member that shows up
    after the tree was sent SIGKILL (a fork in flight, a late ``setsid``) gets SIGKILL too.
    """

    def __init__(self, timers: Timers[_Cancellable], tracker: Tracker) -> None:
        self._timers = timers
        self.tracker = tracker
        self._watched: dict[str, tuple[Tree, list[Callable[[], None]]]] = {}
        self._timer: _Cancellable | None = None

    def watch(self, tree: Tree, callback: Callable[[], None]) -> None:
        self._watched.setdefault(tree.marker, (tree, []))[1].append(callback)
        self._arm()

    def poke(self) -> None:
        if not self._watched:
            return
        members = self.tracker.members([tree for tree, _ in self._watched.values()])
        for marker, (tree, callbacks) in list(self._watched.items()):
            left = members.get(marker)
            if not left:
                del self._watched[marker]
                for callback in callbacks:
                    callback()
            elif tree.killing:
                self.tracker.signal(tree, "SIGKILL", left)
        self._arm()

    def _arm(self) -> None:
        if self._watched and self._timer is None:
            self._timer = self._timers.after(POLL_INTERVAL, self._tick)

    def _tick(self) -> None:
        self._timer = None
        self.poke()

    def watching(self) -> int:
        return len(self._watched)

    async def wait_gone(self, tree: Tree) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def gone() -> None:
            if not future.done():
                future.set_result(None)

        self.watch(tree, gone)
        await future
