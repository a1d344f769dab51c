"""One spawn, tracked from before its fork until its last process is gone (write-ahead).

The spawn's marker (and cgroup) are recorded in the store and committed *before* the fork, so a
daemon killed at any instant leaves a record naming every copy it may have started; the child
carries the marker in its environment and is moved into its cgroup right after the fork
(``process.tracking``, ``process.cgroups.Mover``); the
record goes when every process of the spawn is gone.  ``daemon.recovery`` reads the records.
"""

from __future__ import annotations

import _sqlite3 as sqlite3  # the C module alone, as the store (the package loads datetime)
from typing import TYPE_CHECKING

from corral.process.spawner import Child, SpawnError, spawn
from corral.process.tracking import MARKER, Tree

if TYPE_CHECKING:
    from corral.daemon.slots import Slot
    from corral.process.identity import Identity
    from corral.daemon.supervisor import Supervisor


def fork(sup: Supervisor, slot: Slot, argv: list[str], env: dict[str, str], fds: list[int],
         who: Identity | None = None) -> tuple[Child, Tree]:
    slot.spawns += 1
    tree = sup.tracker.new_tree(f"{slot.uid}-{slot.spawns}")
    env[MARKER] = tree.marker
    try:
        sup.store.intend(tree.marker, slot.app.name, slot.uid, tree.cgroup)
    except sqlite3.Error as exc:  # no fork without its record: never a copy the next daemon cannot find
        sup.tracker.release(tree)
        raise SpawnError(f"cannot record the spawn in the state database ({exc})") from None
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
