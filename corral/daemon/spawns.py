"""One spawn, tracked from before its fork until its last process is gone (write-ahead).

The spawn's marker (and cgroup) are recorded in the store and committed *before* the fork, so a
daemon killed at any instant leaves a record naming every copy it may have started; the child
carries the marker in its environment and is moved into its cgroup right after the fork
(``process.tracking``, ``process.cgroups.Mover``); the
record goes when every process of the spawn is gone.  ``daemon.recovery`` reads the records.

When the record cannot be saved (the state database refuses writes: a full disk), there is no
fork: :class:`NotRecorded`, and the instance waits (``waiting_restart``, with the reason) until
the store saves again, then starts by itself.  A spawn the next daemon could not find would
break the promise "never two copies after a daemon crash"; an instance that starts late does not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from corral.daemon.store import StoreUnavailable
from corral.lifecycle import instance as lc
from corral.process.spawner import Child, SpawnError, spawn
from corral.process.tracking import MARKER, Tree

if TYPE_CHECKING:
    from corral.daemon.slots import Slot
    from corral.process.identity import Identity
    from corral.daemon.supervisor import Supervisor


RETRY_AFTER = 60.0  # a spawn put off: tried again then at the latest (at once when the store saves)


class NotRecorded(SpawnError):
    """The spawn's record could not be saved: no fork (retry once the store saves again)."""


def fork(sup: Supervisor, slot: Slot, argv: list[str], env: dict[str, str], fds: list[int],
         who: Identity | None = None) -> tuple[Child, Tree]:
    slot.spawns += 1
    tree = sup.tracker.new_tree(f"{slot.uid}-{slot.spawns}")
    env[MARKER] = tree.marker
    try:
        sup.store.intend(tree.marker, slot.app.name, slot.uid, tree.cgroup)
    except StoreUnavailable as exc:  # no fork without its record: never a copy the next daemon cannot find
        sup.tracker.release(tree)
        raise NotRecorded(f"not started: {exc}") from None
    try:
        with sup.tracker.spawning(tree):
            child = spawn(argv, env, slot.app.spec, pass_fds=fds, who=who)
    except BaseException:
        over(sup, tree)
        raise
    sup.tracker.started(tree, child.pid)
    return child, tree


def over(sup: Supervisor, tree: Tree) -> None:
    """Every process of one spawn is gone: forget it (its cgroup, its write-ahead record)."""
    sup.tracker.release(tree)
    sup.store.tree_gone(tree.marker)


def resume_put_off(sup: Supervisor) -> None:
    """The store saves again: the instances whose spawn it could not record start now."""
    for app in list(sup.apps.values()):
        for slot in list(app.slots):
            put_off = slot.timers.get(lc.RESPAWN_TIMER)
            if put_off is not None and not put_off.cancelled and slot.status is lc.Status.WAITING_RESTART:
                del slot.timers[lc.RESPAWN_TIMER]
                put_off.cancel()
                sup.dispatch(slot, lc.TimerFired(lc.RESPAWN_TIMER))
