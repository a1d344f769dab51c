"""``corral profile cpu|stack|heap NAME`` and the evidence taken before a replacement (H4).

Imported only when a profile is asked for or an instance is replaced (``ops.apps.LAZY``); the
work is done by the profiling helper the daemon starts (:mod:`corral.profile.service`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

from corral.daemon.ops.apps import Context, UserError, command, resolve
from corral.daemon.supervisor import App, Slot, Supervisor
from corral.feature_events import Evidence, Profiled
from corral.exceptions import OperationFailed
from corral.profile.service import HelperFailed, run_helper, service_of

WHAT = ("cpu", "stack", "heap")
log = logging.getLogger("corral.daemon")
_running: set[asyncio.Task[Any]] = set()


def running_slot(app: App, index: int | None) -> Slot:
    """The instance INDEX of APP (the first running one when None), running: else one line."""
    if index is None:
        slot = next((s for s in app.slots if s.child is not None), None)
        if slot is None:
            raise UserError(f"{app.name} is not running: nothing to profile (`corral start {app.name}`)")
        return slot
    slot = next((s for s in app.slots if s.index == index), None)
    if slot is None:
        have = ", ".join(str(s.index) for s in app.slots) or "none"
        raise UserError(f"{app.name} has no instance {index} (its instances: {have})")
    if slot.child is None:
        raise UserError(f"{app.name}[{index}] is not running ({slot.status.value})")
    return slot


@command("profile")
async def profile(ctx: Context, args: dict[str, Any]) -> Any:
    sup = ctx.supervisor
    what = args["what"]
    if what not in WHAT:
        raise UserError(f"profile: {what!r} is not one of {', '.join(WHAT)}")
    apps = resolve(sup, args["target"])
    if len(apps) != 1:
        raise UserError(f"profile: {args['target']!r} names {len(apps)} apps (profile one app at a time)")
    app = apps[0]
    slot = running_slot(app, args.get("instance"))
    pid = slot.child.pid  # type: ignore[union-attr]
    service = service_of(sup.core)
    job = service.job(what, app.name, slot.index, pid, duration=args.get("duration") or 30,
                      format=args.get("format") or "", timeout=120 if what == "heap" else 10)
    try:
        answer = await run_helper(sup.core, job, sup.python)
    except HelperFailed as exc:
        if what != "stack":
            sup.core.publish(Profiled(app=app.name, instance=slot.index, what=what, pid=pid, error=str(exc)))
        raise OperationFailed(str(exc)) from None
    if what != "stack":
        sup.core.publish(Profiled(app=app.name, instance=slot.index, what=what, pid=pid,
                                  files=tuple(answer.get("files", []))))
    return {**answer, "app": app.name, "instance": slot.index}


async def evidence(sup: Supervisor, app: App, slot: Slot, reason: str) -> Evidence | None:
    """H4, before a replacement corral did not choose on its own: what the instance was doing."""
    if slot.child is None:
        return None
    logs = list(slot.log_paths or sup.logs.paths(app.spec, slot.index))
    return await service_of(sup.core).evidence(app.name, slot.index, slot.child.pid, reason,
                                               [p for p in logs if p and p != "/dev/null" and not p.startswith("<")])


def evidence_then(sup: Supervisor, slot: Slot, reason: str, then: Callable[[], None]) -> None:
    """The evidence of SLOT (bounded), then THEN(): a watchdog's restart waits for it, no longer."""

    async def run() -> None:
        try:
            await evidence(sup, slot.app, slot, reason)
        except Exception:  # never let a capture stand in the way of the restart
            log.exception("%s[%d]: the evidence before the restart failed", slot.app.name, slot.index)
        finally:
            then()

    task = asyncio.get_running_loop().create_task(run())
    _running.add(task)
    task.add_done_callback(_running.discard)
