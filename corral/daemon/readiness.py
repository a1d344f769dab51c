"""How the daemon hears from launching and running instances: sd_notify datagrams
(``READY=1``, ``STATUS=``, ``WATCHDOG=1``, ``STOPPING=1``) and readiness probes.

Both only feed the supervisor events (``lc.Ready``, ``lc.WatchdogPing``) and publish
what they saw; the decisions stay in the lifecycle.
"""

from __future__ import annotations

import os
from functools import partial
from typing import TYPE_CHECKING

from corral import events as ev
from corral.lifecycle import instance as lc
from corral.process import procfs

if TYPE_CHECKING:
    from corral.daemon.supervisor import Slot, Supervisor


def on_notify(sup: Supervisor, pid: int, fields: dict[str, str]) -> None:
    """A datagram on NOTIFY_SOCKET from PID (an instance's main process or a member of its group)."""
    slot = slot_of(sup, pid)
    if slot is None:
        return
    if "STATUS" in fields:
        slot.status_text = fields["STATUS"]
    if fields.get("READY") == "1":
        sup.dispatch(slot, lc.Ready())
    if fields.get("WATCHDOG") == "1":
        sup.dispatch(slot, lc.WatchdogPing())
    if fields.get("STOPPING") == "1":
        sup.publish(ev.Note(app=slot.app.name, instance=slot.index, kind="stopping",
                            message="the app said STOPPING=1"))


def slot_of(sup: Supervisor, pid: int) -> Slot | None:
    slots = [s for a in sup.apps.values() for s in a.slots if s.child is not None]
    for slot in slots:
        if slot.child is not None and slot.child.pid == pid:
            return slot
    stat = procfs.read_stat(pid)
    if stat is not None:
        for slot in slots:
            if slot.pgid == stat.pgid:
                return slot
    return None


def start_probe(sup: Supervisor, slot: Slot) -> None:
    """Probe the launching instance on the timer service until it is ready or gone."""
    if slot.probe is not None:
        slot.probe.cancel()
    child = slot.child
    if child is None:
        return

    def still_launching() -> bool:
        return slot.child is child and slot.status is lc.Status.LAUNCHING

    def group() -> set[int]:  # the processes of this instance: a probe counts only if they answered
        members = procfs.live_groups({child.pid}, within=os.getpid()).get(child.pid, [])
        return {m.pid for m in members}

    from corral.health.probes import ReadinessProbe

    spec = slot.app.spec
    listen = sup.sockets.resolved(slot.app.name, spec.listen)
    slot.probe = ReadinessProbe(
        sup.core, slot.app.name, slot.index, spec.ready or {}, listen, still_launching,
        partial(sup.dispatch, slot, lc.Ready()), sup.reaper, spec.cwd, slot.env,
        group if spec.listen else None,
    )
    slot.probe.start()
