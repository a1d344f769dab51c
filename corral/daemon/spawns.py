"""One spawn: its argv, environment and sockets (:func:`start`), tracked from before its fork until
its last process is gone (write-ahead).

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

import os
from typing import TYPE_CHECKING

from corral.daemon.store import StoreUnavailable
from corral.lifecycle import instance as lc
from corral.logs.safeopen import LogFileError
from corral.process.identity import IdentityError
from corral.process.identity import resolve as resolve_identity
from corral.process.limits import for_spawn as limits_for_spawn
from corral.process.limits import ptracer_needed
from corral.process.listeners import BindError
from corral.process.spawner import Child, SpawnError, build_env, socket_env, spawn
from corral.process.tracking import MARKER, Tree

if TYPE_CHECKING:
    from corral.daemon.slots import Slot
    from corral.logs.sinks import InstanceLogs
    from corral.process.identity import Identity
    from corral.daemon.supervisor import Supervisor

EXEC_SHIM = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "process", "exec_shim.py")


def start(sup: Supervisor, slot: Slot) -> tuple[Child, Tree, InstanceLogs, dict[str, str]] | None:
    """Start SLOT's program: (child, tree, its open logs, its environment), or None when it could
    not start (the lifecycle is told, with the reason)."""
    app = slot.app
    logs: InstanceLogs | None = None
    node = None
    try:
        from corral.config.command import resolve_argv

        argv = resolve_argv(app.spec, sup.python)
        who = resolve_identity(app.spec)
        owner = who.owner if who is not None else None
        env = build_env(app.spec, slot.index, app.base_env, who)
        if sup.notify_path:
            env["NOTIFY_SOCKET"] = sup.notify_sockets.path_for(owner)
        profile_env(sup, app.name, app.spec.heap_profile, env)
        fds: list[int] = []
        shim = limits_for_spawn(app.spec.limits)
        if ptracer_needed():  # Yama scope 1: the app names the daemon (and the profiler it starts) as tracer
            shim = [*shim, "--ptracer", str(os.getpid())]
        if app.spec.listen:
            fds = sup.sockets.fds(app.name, app.spec.listen, slot.index)
            env.update(socket_env(app.name, len(fds)))
        shimmed = bool(shim or fds)  # then every passed fd moves to 3, 4, ...
        if app.node_ipc:  # Node's IPC channel, and in cluster mode the preload (daemon.nodeapps)
            from corral.daemon import nodeapps

            argv, extra, node = nodeapps.prepare(sup, slot, argv, env, 3 + len(fds) if shimmed else None)
            fds = fds + extra
        if shimmed:  # set in the child itself, before the program runs
            argv = [sup.python, "-I", "-S", EXEC_SHIM, *shim, *(["--fds", ",".join(map(str, fds))] if fds else []),
                    "--", *argv]
        logs = sup.logs.open(app.spec, slot.index, owner, app.log_loss)  # before the fork: a refused file leaves no process
        child, tree = fork(sup, slot, argv, env, fds, who)  # write-ahead: recorded before the fork
    except (SpawnError, BindError, IdentityError, LogFileError) as exc:
        if logs is not None:
            logs.close()
        if node is not None:
            node.failed()
        slot.spawn_error = str(exc)
        retry = RETRY_AFTER if isinstance(exc, NotRecorded) else None
        sup.dispatch(slot, lc.SpawnFailed(str(exc), retry))
        return None
    if node is not None:
        node.started(sup, slot, child)
    return child, tree, logs, env


def profile_env(sup: Supervisor, name: str, heap_profile: bool, env: dict[str, str]) -> None:
    """Where ``corral.app`` writes heap snapshots, and tracemalloc from the start with ``heap_profile``."""
    home = sup.core.state_dir
    if home:
        env["CORRAL_PROFILE_DIR"] = os.path.join(home, "profiles", name)
    if heap_profile:
        env.setdefault("PYTHONTRACEMALLOC", "1")


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
