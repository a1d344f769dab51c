"""Zero-downtime rolling reload: per instance, start the new one, wait until ready, stop the old.

``parallel`` instances are replaced at a time.  The new instance of a slot
shares that slot's listening socket with the old one, so no connection is
refused while they overlap.  If a new instance dies or is not ready in time,
the reload stops there: that instance is removed and the old ones keep serving.
"""

from __future__ import annotations

from corral.events import ReloadProgress
from corral.lifecycle import instance as lc
from corral.daemon.supervisor import App, Slot, Status, Supervisor

MARGIN = 5.0


class ReloadFailed(Exception):
    """The reload stopped; the message says which instance failed and why."""


def _settled(slot: Slot) -> bool:
    """The new instance is ready, or has failed (exited, not ready in time, could not start)."""
    return slot.status is Status.ONLINE or slot.last_exit is not None or slot.status in (
        Status.ERRORED, Status.WAITING_RESTART, Status.STOPPING, Status.STOPPED)


def _pid(slot: Slot) -> int | None:
    """The pid that failed: the first exit's, else the live one."""
    if slot.last_exit is not None:
        return slot.last_exit.get("pid")
    return slot.child.pid if slot.child else None


def _why(slot: Slot, wait: float) -> str:
    if slot.spawn_error:
        return f"could not start: {slot.spawn_error}"
    last = slot.last_exit
    if last is not None:
        how = f"was killed by {last['signal']}" if last.get("signal") else f"exited with code {last['code']}"
        return f"{how} before it was ready"
    if slot.status is Status.LAUNCHING:
        return f"was not ready within {wait:g}s"
    return f"was not ready within {wait:g}s ({slot.app.policy.ready_mode})"


async def rolling_reload(sup: Supervisor, app: App, parallel: int = 1) -> list[str]:
    """Replace every instance of APP; returns one line per replaced instance."""
    wait = (app.policy.ready_wait() or 0.0) + MARGIN
    replaced: list[str] = []
    old_slots = sorted(app.slots, key=lambda s: s.index)
    for start in range(0, len(old_slots), max(1, parallel)):
        batch = old_slots[start : start + max(1, parallel)]
        pairs = [(old, sup.add_slot(app, old.index)) for old in batch]
        for _, new in pairs:
            sup.dispatch(new, lc.Start())
        await sup.wait_for(lambda: all(_settled(new) for _, new in pairs), wait)
        failed = [new for _, new in pairs if new.status is not Status.ONLINE]
        reasons = [(new.index, _pid(new), _why(new, wait - MARGIN)) for new in failed]
        for old, new in pairs:
            victim = new if new in failed else old
            sup.dispatch(victim, lc.Stop(lc.After.DELETE))
        if failed:
            index, pid, why = reasons[0]
            await sup.wait_for(lambda: not any(s in app.slots for s in failed), app.policy.kill_timeout + MARGIN)
            done = f"; {len(replaced)} instance(s) were replaced before" if replaced else ""
            raise ReloadFailed(
                f'reload of "{app.name}" stopped: new instance {index} (pid {pid}) {why}; '
                f"the old instances keep serving{done}")
        await sup.wait_for(lambda: not any(old in app.slots for old, _ in pairs), app.policy.kill_timeout + MARGIN)
        for old, new in pairs:
            replaced.append(f"{app.name}[{old.index}]: pid {old.last_exit and old.last_exit.get('pid')} -> {new.child and new.child.pid}")
            sup.publish(ReloadProgress(app=app.name, instance=old.index, step="replaced", message=replaced[-1]))
    return replaced
