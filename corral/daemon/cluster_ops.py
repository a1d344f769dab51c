"""Control operations for running apps as clusters: reload, scale, and dependency order.

Registered with the same ``command`` table as :mod:`corral.daemon.commands`.
"""

from __future__ import annotations

from typing import Any

from corral import lifecycle as lc
from corral.daemon.commands import Context, OperationFailed, UserError, command, resolve, rows
from corral.daemon.dependencies import CycleError, start_layers, stop_layers
from corral.daemon.reload import ReloadFailed, rolling_reload
from corral.daemon.supervisor import App, Status, Supervisor

MARGIN = 10.0


def _online(app: App) -> bool:
    return bool(app.slots) and all(s.status is Status.ONLINE for s in app.slots)


def _failed(app: App) -> bool:
    return any(s.status in (Status.ERRORED, Status.STOPPED) for s in app.slots)


async def start_ordered(sup: Supervisor, apps: list[App], launch: Any) -> None:
    """Call ``launch(app)`` for each app once every app it depends on is ready."""
    deps = {a.name: list(a.spec.get("depends_on") or []) for a in apps}
    for name, wanted in deps.items():
        for dep in wanted:
            if dep not in sup.apps:
                raise UserError(f'app "{name}" depends on "{dep}", which is not defined')
    try:
        layers = start_layers(deps)
    except CycleError as exc:
        raise UserError(str(exc)) from None
    by_name = {a.name: a for a in apps}
    for layer in layers:
        for name in layer:
            app = by_name[name]
            needed = [sup.apps[d] for d in deps[name]]
            if needed:
                wait = max((d.policy.ready_wait() or 0.0) for d in needed) + MARGIN
                await sup.wait_for(lambda: all(_online(d) or _failed(d) for d in needed), wait)
                missing = [d.name for d in needed if not _online(d)]
                if missing:
                    message = f'not started: dependency "{missing[0]}" is not ready'
                    sup.store.add_event(name, None, "dependency", message)
                    raise OperationFailed(f'"{name}" was {message}')
            launch(app)


async def stop_ordered(sup: Supervisor, apps: list[App], dispatch_stop: Any) -> bool:
    """Stop apps dependents-first: each layer is stopped and settled before the next."""
    deps = {a.name: list(a.spec.get("depends_on") or []) for a in apps}
    try:
        layers = stop_layers(deps)
    except CycleError:
        layers = [[a.name for a in apps]]
    by_name = {a.name: a for a in apps}
    ok = True
    for layer in layers:
        group = [by_name[n] for n in layer]
        for app in group:
            dispatch_stop(app)
        wait = max([a.policy.kill_timeout for a in group] + [0.0]) + MARGIN
        ok = await sup.wait_for(
            lambda: all(s.status in lc.RESTING for a in group for s in a.slots if a.name in sup.apps), wait) and ok
    return ok


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
        try:
            lines += await _reload_one(sup, app, parallel)
        except ReloadFailed as exc:
            raise OperationFailed(str(exc)) from None
        finally:
            ctx.busy.discard(app.name)
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
    sup.update_app(app, {**app.spec, "instances": wanted})
    sup.resize(app)
    wait = max(app.policy.ready_wait() or 0.0, app.policy.kill_timeout) + MARGIN
    await sup.wait_for(lambda: len(app.slots) == wanted and all(
        s.status is not Status.LAUNCHING for s in app.slots), wait)
    return {"rows": rows(sup, [app])}
