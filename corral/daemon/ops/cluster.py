"""Control operations for running apps as clusters: reload and scale.

Registered with the same ``command`` table as :mod:`corral.daemon.ops.apps`, and
imported only when one of them is first asked for (see ``ops.apps.LAZY``).
Both hold their app for their whole run (``ops.mutation``): one mutation per app.
"""

from __future__ import annotations

from typing import Any

from corral.config.plan import Change, for_reload
from corral.config.limits import max_instances
from corral.daemon.ops.apps import (
    Context, OperationFailed, UserError, _await, _restart, _running, _settled, command, resolve, rows, specs_of,
)
from corral.daemon.ops.mutation import holding
from corral.events import ReloadProgress, ScaleProgress
from corral.daemon.ops.reload import ReloadFailed, rolling_reload
from corral.daemon.supervisor import App, Status, Supervisor
from corral.lifecycle import app as am

MARGIN = 10.0


@command("reload")
async def reload(ctx: Context, args: dict[str, Any]) -> Any:
    """Rolling reload: start new, wait ready, stop old, ``parallel`` instances at a time."""
    sup = ctx.supervisor
    apps = resolve(sup, args.get("target"))
    parallel = args.get("parallel") or 1
    ceiling = max_instances()
    if not isinstance(parallel, int) or isinstance(parallel, bool) or not 1 <= parallel <= ceiling:
        raise UserError(f"--parallel must be a number from 1 to {ceiling}, not {parallel}")
    specs = {s.name: s for s in specs_of(args)}
    only = _only(args.get("only"))
    lines: list[str] = []
    with holding(sup, "reload", apps):
        for app in apps:
            if app.name in specs:
                sup.update_app(app, specs[app.name], args.get("base_env") or app.base_env)
            sup.publish(ReloadProgress(app=app.name, step="started", message=f"reload started (parallel {parallel})"))
            try:
                lines += await _reload_one(sup, app, parallel, only)
            except ReloadFailed as exc:
                sup.publish(ReloadProgress(app=app.name, step="failed", message=str(exc)))
                raise OperationFailed(str(exc)) from None
            sup.publish(ReloadProgress(app=app.name, step="done", message="reload done"))
        await _await(sup, lambda: all(_settled(a) for a in apps), apps, "reload")
    return {"rows": rows(sup, apps), "replaced": lines}


def _only(raw: Any) -> set[int] | None:
    """``only``: "0,1" -> {0, 1} (a deploy's canary replaces these instances); None: every one."""
    if raw is None:
        return None
    try:
        found = {int(part) for part in str(raw).split(",") if part.strip()}
    except ValueError:
        raise UserError(f"reload: only: {str(raw)[:80]!r} is not a list of instance numbers (0,1)") from None
    if not found or min(found) < 0:
        raise UserError(f"reload: only: {str(raw)[:80]!r} is not a list of instance numbers (0,1)")
    return found


async def _reload_one(sup: Supervisor, app: App, parallel: int, only: set[int] | None = None) -> list[str]:
    if only is not None and not any(s.index in only for s in app.slots):
        return []
    if for_reload(app.spec.to_dict(), _running(app)) is Change.RESTART:
        _restart(sup, app)
        await sup.wait_for(lambda: _settled(app), app.policy.kill_timeout + MARGIN)
        return [f"{app.name}: restarted"]
    replaced = await rolling_reload(sup, app, parallel, only)
    sup.resize(app)
    return replaced


@command("scale")
async def scale(ctx: Context, args: dict[str, Any]) -> Any:
    """``scale NAME N|+N|-N``: add instances (started) or remove the highest ones (stopped)."""
    sup = ctx.supervisor
    apps = resolve(sup, args.get("target"))
    if len(apps) != 1:
        raise UserError("scale takes one app")
    app = apps[0]
    wanted = am.scale_target(app.state.instances, str(args.get("count", "")), max_instances())
    if isinstance(wanted, str):
        raise UserError(f"scale: {app.name} {wanted}" if wanted.startswith("would") else f"scale: {wanted}")
    with holding(sup, "scale", [app]):
        before = app.state.instances
        sup.publish(ScaleProgress(app=app.name, step="started", before=before, after=wanted))
        sup.update_app(app, app.spec.with_changes(instances=wanted))
        sup.resize(app)
        wait = max(app.policy.ready_wait(), app.policy.kill_timeout) + MARGIN
        await sup.wait_for(lambda: _settled(app) and len(app.slots) == wanted and all(
            s.status is not Status.LAUNCHING for s in app.slots), wait)
        sup.publish(ScaleProgress(app=app.name, step="done", before=before, after=wanted))
    return {"rows": rows(sup, [app])}
