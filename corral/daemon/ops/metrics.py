"""Control operations of the monitor: ``metrics`` (latest samples and their history) and
``replace`` (one instance, gracefully: what ``max_memory_restart`` asks for through ``Core.call``).

Imported only when one of them is first asked for (``ops.apps.LAZY``).
"""

from __future__ import annotations

from typing import Any

from corral.daemon.ops.apps import Context, UserError, command, resolve
from corral.daemon.ops.mutation import holding
from corral.daemon.ops.reload import ReloadFailed, rolling_reload
from corral.daemon.supervisor import App, Slot, Status
from corral.exceptions import OperationFailed
from corral.lifecycle import instance as lc

MARGIN = 10.0
POINTS = 60  # buckets of a history


@command("metrics")
async def metrics(ctx: Context, args: dict[str, Any]) -> Any:
    sup = ctx.supervisor
    target = args.get("target")
    apps = resolve(sup, target) if target and target != "all" else None
    names = [a.name for a in apps] if apps is not None else None
    monitor = sup.core.features.get("monitor")
    if monitor is None:
        raise UserError("monitoring is off in this daemon (corral run, or no sampling yet)")
    since = int(args.get("since") or 3600)
    return monitor.report(names, since)


@command("replace")
async def replace(ctx: Context, args: dict[str, Any]) -> Any:
    """Replace one instance: a new one first when the app has a socket (the rolling reload: no
    request fails), else its stop_signal, kill_timeout, and the usual restart."""
    sup = ctx.supervisor
    apps = resolve(sup, args["target"])
    if len(apps) != 1:
        raise UserError(f"replace: {args['target']!r} names {len(apps)} apps (one app, one instance)")
    app = apps[0]
    index = int(args["instance"])
    slot = next((s for s in app.slots if s.index == index and s.child is not None), None)
    if slot is None:
        raise UserError(f"{app.name}[{index}] is not running")
    old = slot.child.pid if slot.child else None
    from corral.daemon.ops.profile import evidence

    captured = await evidence(sup, app, slot, str(args["reason"]))  # H4: bounded, a few seconds at most
    if slot.child is None or slot.child.pid != old:  # it went meanwhile: nothing left to replace
        raise UserError(f"{app.name}[{index}] ended while its stacks were taken")
    with holding(sup, "restart", [app]):
        if app.spec.listen and app.spec.reload == "rolling":
            try:
                lines = await rolling_reload(sup, app, only={index})
            except ReloadFailed as exc:
                raise OperationFailed(str(exc)) from None
            return {"how": "rolling", "replaced": lines, "evidence": captured.message if captured else ""}
        sup.dispatch(slot, lc.Stop(lc.After.RESTART, args.get("by") or "corral replace"))
        wait = app.policy.kill_timeout + app.policy.ready_wait() + MARGIN
        if not await sup.wait_for(lambda: _restarted(app, slot, old), wait):
            raise OperationFailed(f"{app.name}[{index}] was not back within {wait:g}s")
    return {"how": "restart", "replaced": [f"{app.name}[{index}]: pid {old} -> "
                                           f"{slot.child.pid if slot.child else None}"],
            "evidence": captured.message if captured else ""}


def _restarted(app: App, slot: Slot, old: int | None) -> bool:
    if app.desired != "online" or app.deleting or slot not in app.slots:
        return True
    pid = slot.child.pid if slot.child else None
    return pid is not None and pid != old and slot.status is not Status.STOPPING
