"""Control operations for running apps as clusters: reload and scale.

Registered with the same ``command`` table as :mod:`corral.daemon.ops.apps`, and
imported only when one of them is first asked for (see ``commands.LAZY``).
"""

from __future__ import annotations

from typing import Any

from corral.events import ReloadProgress, ScaleProgress
from corral.lifecycle import instance as lc
from corral.daemon.ops.apps import Context, OperationFailed, UserError, command, resolve, rows
from corral.daemon.ops.reload import ReloadFailed, rolling_reload
from corral.daemon.supervisor import App, Status, Supervisor

MARGIN = 10.0


@command("reload")
async def reload(ctx: Context, args: dict[str, Any]) -> Any:
    """Rolling reload: start new, wait ready, stop old, ``parallel`` instances at a time."""
    sup = ctx.supervisor
    apps = resolve(sup, args.get("target"))
    parallel = int(args.get("parallel") or 1)
    if parallel < 1:
        raise UserError(f"--parallel must be 1 or more, not {parallel}")
    specs = {s["name"]: s for s in args.get("apps") or []}
    lines: list[str] = []
    for app in apps:
        if app.name in ctx.busy:
            raise UserError(f'a reload or scale of "{app.name}" is already running')
        if app.name in specs:
            sup.update_app(app, specs[app.name], args.get("base_env") or app.base_env)
        ctx.busy.add(app.name)
        sup.publish(ReloadProgress(app=app.name, step="started", message=f"reload started (parallel {parallel})"))
        try:
            done = await _reload_one(sup, app, parallel)
        except ReloadFailed as exc:
            sup.publish(ReloadProgress(app=app.name, step="failed", message=str(exc)))
            raise OperationFailed(str(exc)) from None
        finally:
            ctx.busy.discard(app.name)
        sup.publish(ReloadProgress(app=app.name, step="done", message="reload done"))
        lines += done
    return {"rows": rows(sup, apps), "replaced": lines}


async def _reload_one(sup: Supervisor, app: App, parallel: int) -> list[str]:
    running = [s for s in app.slots if s.status in lc.RUNNING]
    if app.spec.get("reload") == "restart" or not running:
        sup.set_desired(app, "online")
        sup.stop(app, lc.After.RESTART)
        await sup.wait_for(lambda: not any(s.status is Status.STOPPING for s in app.slots),
                           app.policy.kill_timeout + MARGIN)
        return [f"{app.name}: restarted"]
    return await rolling_reload(sup, app, parallel)


@command("scale")
async def scale(ctx: Context, args: dict[str, Any]) -> Any:
    """``scale NAME N|+N|-N``: add instances (started) or remove the highest ones (stopped)."""
    sup = ctx.supervisor
    apps = resolve(sup, args.get("target"))
    if len(apps) != 1:
        raise UserError("scale takes one app")
    app = apps[0]
    text = str(args.get("count", "")).strip()
    try:
        value = int(text)
    except ValueError:
        raise UserError(f'scale: "{text}" is not a number of instances (use 4, +2 or -1)') from None
    wanted = len({s.index for s in app.slots}) + value if text[:1] in "+-" else value
    if wanted < 1:
        raise UserError(f"scale: {app.name} would have {wanted} instances (at least 1; use stop to stop it)")
    if app.name in ctx.busy:
        raise UserError(f'a reload or scale of "{app.name}" is already running')
    before = len({s.index for s in app.slots})
    sup.publish(ScaleProgress(app=app.name, step="started", before=before, after=wanted))
    sup.update_app(app, {**app.spec, "instances": wanted})
    sup.resize(app)
    wait = max(app.policy.ready_wait() or 0.0, app.policy.kill_timeout) + MARGIN
    await sup.wait_for(lambda: len(app.slots) == wanted and all(
        s.status is not Status.LAUNCHING for s in app.slots), wait)
    sup.publish(ScaleProgress(app=app.name, step="done", before=before, after=wanted))
    return {"rows": rows(sup, [app])}
