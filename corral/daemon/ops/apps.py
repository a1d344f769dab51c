"""One handler per control operation.  Handlers return JSON-able results or raise UserError.

Mutating commands wait for the state they asked for (every instance stopped,
restarted or removed) with a deadline, so the CLI can report the outcome.
"""

from __future__ import annotations

import json
import os
import time
from functools import partial
from typing import Any, Awaitable, Callable

from corral import __version__
from corral.lifecycle import instance as lc
from corral.daemon.supervisor import App, Status, Supervisor

Handler = Callable[["Context", dict[str, Any]], Awaitable[Any]]
HANDLERS: dict[str, Handler] = {}
SECRET_SUFFIXES = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASS", "PASSWD", "CREDENTIALS")
MASK = "********"
SETTLE_MARGIN = 10.0


class UserError(Exception):
    """The request names something that does not exist or is not allowed."""


class OperationFailed(Exception):
    """A valid request that did not succeed (a stop that did not finish in time...)."""


class Context:
    def __init__(self, supervisor: Supervisor, dump_path: str) -> None:
        self.supervisor = supervisor
        self.dump_path = dump_path
        self.shutdown_requested = False
        self.busy: set[str] = set()  # apps with a reload or scale under way


def command(name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS[name] = fn
        return fn

    return register


# -- targets ------------------------------------------------------------------------------
def resolve(sup: Supervisor, target: Any) -> list[App]:
    """Apps named by ``all``, a name, a numeric id or a namespace."""
    if not isinstance(target, str) or not target:
        raise UserError("a target is required: an app name, an id, a namespace or \"all\"")
    apps = list(sup.apps.values())
    if target == "all":
        return apps
    if target in sup.apps:
        return [sup.apps[target]]
    if target.isdigit():
        found = [a for a in apps if a.id == int(target)]
        if found:
            return found
    in_namespace = [a for a in apps if a.namespace == target]
    if in_namespace:
        return in_namespace
    known = ", ".join(a.name for a in apps) or "none yet"
    raise UserError(f'no app, id or namespace named "{target}" (apps: {known})')


def _settle_time(apps: list[App]) -> float:
    return max([a.policy.kill_timeout for a in apps] + [0.0]) + SETTLE_MARGIN


async def _await(sup: Supervisor, predicate: Callable[[], bool], apps: list[App], what: str) -> None:
    if not await sup.wait_for(predicate, _settle_time(apps)):
        raise OperationFailed(f"{what} did not finish in time for: {', '.join(a.name for a in apps)}")


# -- rows ---------------------------------------------------------------------------------
def rows(sup: Supervisor, apps: list[App] | None = None) -> list[dict[str, Any]]:
    usage = sup.sample_usage()
    out = []
    for app in sorted(apps if apps is not None else sup.apps.values(), key=lambda a: a.id):
        for slot in app.slots:
            running = slot.child is not None
            cpu, mem = usage.get(slot.pgid or -1, (0.0, 0)) if running else (0.0, 0)
            out.append({
                "name": app.name,
                "id": app.id,
                "namespace": app.namespace,
                "instance": slot.index,
                "pid": slot.child.pid if running else None,  # type: ignore[union-attr]
                "status": slot.status.value,
                "restarts": slot.state.restarts,
                "started_at": slot.started_wall if running else None,
                "cpu_percent": cpu,
                "memory_bytes": mem,
            })
    return out


def mask_env(env: dict[str, str]) -> dict[str, str]:
    return {k: (MASK if k.upper().endswith(SECRET_SUFFIXES) else v) for k, v in env.items()}


# -- operations ---------------------------------------------------------------------------
@command("ping")
async def ping(ctx: Context, args: dict[str, Any]) -> Any:
    return {"pid": os.getpid(), "version": __version__, "apps": len(ctx.supervisor.apps),
            "bus": ctx.supervisor.bus.stats()}


@command("ls")
async def ls(ctx: Context, args: dict[str, Any]) -> Any:
    return rows(ctx.supervisor)


@command("start")
async def start(ctx: Context, args: dict[str, Any]) -> Any:
    """Start apps from specs (a file or a command line), or existing apps by target."""
    sup = ctx.supervisor
    base_env = args.get("base_env") or {}
    touched: list[App] = []
    notes: list[str] = []
    launches: list[tuple[App, Any]] = []
    for spec in args.get("apps") or []:
        app = sup.apps.get(spec["name"])
        if app is None:
            app = sup.add_app(spec, base_env)
            launches.append((app, sup.start))
        elif app.deleting:
            raise UserError(f'app "{app.name}" is being deleted; try again')
        elif app.spec != spec:
            sup.update_app(app, spec, base_env)
            launches.append((app, partial(_apply_change, sup)))
            rolling = app.spec.get("listen") and app.spec.get("reload") == "rolling"
            notes.append(f"{app.name}: configuration changed, {'reloaded' if rolling else 'restarted'}")
        elif any(s.status in lc.RUNNING for s in app.slots) and app.desired == "online":
            notes.append(f"{app.name}: already running")
        else:
            sup.update_app(app, spec, base_env)
            launches.append((app, sup.start))
        touched.append(app)
    if args.get("target"):
        for app in resolve(sup, args["target"]):
            launches.append((app, sup.start))
            touched.append(app)
    how = {app.name: launch for app, launch in launches}

    def launch(app: App) -> Any:
        with sup.store.batch():  # one transaction for the whole burst of spawns
            return how[app.name](app)

    await start_ordered(sup, [app for app, _ in launches], launch)
    errors = [f"{a.name}[{s.index}]: {s.spawn_error}" for a in touched for s in a.slots
              if s.status is Status.ERRORED and s.spawn_error]
    return {"rows": rows(sup, touched), "notes": notes, "errors": errors}


async def _apply_change(sup: Supervisor, app: App) -> None:
    """A changed app: rolling reload when it serves a shared socket, else restart (or start)."""
    running = any(s.status in lc.RUNNING for s in app.slots)
    if running and app.spec.get("listen") and app.spec.get("reload") == "rolling":
        from corral.daemon.ops.reload import ReloadFailed, rolling_reload

        try:
            await rolling_reload(sup, app)
        except ReloadFailed as exc:
            raise OperationFailed(str(exc)) from None
        sup.resize(app)
        return
    _start_or_restart(sup, app)


def _start_or_restart(sup: Supervisor, app: App) -> None:
    if any(s.status in lc.RUNNING or s.status is Status.WAITING_RESTART for s in app.slots):
        sup.set_desired(app, "online")
        sup.resize(app)
        sup.stop(app, lc.After.RESTART)
    else:
        sup.start(app)


@command("stop")
async def stop(ctx: Context, args: dict[str, Any]) -> Any:
    sup = ctx.supervisor
    apps = resolve(sup, args.get("target"))
    if not await stop_ordered(sup, apps, sup.stop):
        raise OperationFailed(f"stop did not finish in time for: {', '.join(a.name for a in apps)}")
    return {"rows": rows(sup, apps)}


@command("restart")
async def restart(ctx: Context, args: dict[str, Any]) -> Any:
    sup = ctx.supervisor
    apps = resolve(sup, args.get("target"))
    specs = {s["name"]: s for s in args.get("apps") or []}
    for app in apps:
        if app.name in specs:
            sup.update_app(app, specs[app.name], args.get("base_env") or app.base_env)
        sup.set_desired(app, "online")
        sup.resize(app)
        sup.stop(app, lc.After.RESTART)
    await _await(sup, lambda: not any(s.status is Status.STOPPING for a in apps for s in a.slots), apps, "restart")
    return {"rows": rows(sup, apps)}


@command("delete")
async def delete(ctx: Context, args: dict[str, Any]) -> Any:
    sup = ctx.supervisor
    apps = resolve(sup, args.get("target"))
    for app in apps:
        sup.stop(app, lc.After.DELETE)
    await _await(sup, lambda: not any(a.name in sup.apps for a in apps), apps, "delete")
    return {"deleted": [a.name for a in apps]}


@command("signal")
async def send_signal(ctx: Context, args: dict[str, Any]) -> Any:
    import signal as _signal

    name = str(args.get("signal", "")).upper()
    name = name if name.startswith("SIG") else f"SIG{name}"
    if name not in _signal.Signals.__members__:
        raise UserError(f'unknown signal "{args.get("signal")}" (try SIGUSR1, SIGHUP, SIGTERM...)')
    apps = resolve(ctx.supervisor, args.get("target"))
    sent = sum(ctx.supervisor.signal(app, name) for app in apps)
    if not sent:
        raise OperationFailed(f"no running instance to send {name} to")
    return {"signal": name, "instances": sent}


@command("describe")
async def describe(ctx: Context, args: dict[str, Any]) -> Any:
    sup = ctx.supervisor
    apps = resolve(sup, args.get("target"))
    return [_describe(sup, app) for app in apps]


def _describe(sup: Supervisor, app: App) -> dict[str, Any]:
    from corral.logs.crashreport import last_crash

    from corral.config.command import resolve_argv

    spec = {**app.spec, "env": mask_env(app.spec.get("env") or {})}
    instances = []
    for slot, row in zip(app.slots, rows(sup, [app])):
        out_log, err_log = sup.logs.paths(app.spec, slot.index)
        instances.append({**row, "out_log": out_log, "err_log": err_log, "last_exit": slot.last_exit,
                          "status_text": slot.status_text})
    return {
        "name": app.name,
        "id": app.id,
        "namespace": app.namespace,
        "desired": app.desired,
        "argv": resolve_argv(app.spec, sup.python),
        "listen": sup.sockets.resolved(app.name, app.spec.get("listen") or []),
        "config": spec,
        "instances": instances,
        "events": sup.store.events(app.name, 20),
        "last_crash": last_crash(sup.store, app.name),
        "bus": {"dropped": sup.bus.dropped, "subscribers": len(sup.bus.subscriptions)},
    }


@command("events")
async def events(ctx: Context, args: dict[str, Any]) -> Any:
    return history(ctx.supervisor, args.get("target"), int(args.get("limit") or 50))


def history(sup: Supervisor, target: Any, limit: int) -> list[dict[str, Any]]:
    """The last ``limit`` stored events of the target apps (all apps for None or "all")."""
    if target and target != "all":
        names = [a.name for a in resolve(sup, target)]
        found = [e for n in names for e in sup.store.events(n, limit)]
        return sorted(found, key=lambda e: e["ts"])[-limit:] if limit > 0 else []
    return sup.store.events(None, limit)


@command("save")
async def save(ctx: Context, args: dict[str, Any]) -> Any:
    apps = sorted(ctx.supervisor.apps.values(), key=lambda a: a.id)
    dump = {"version": 1, "saved_at": time.time(),
            "apps": [{"spec": a.stored_spec(), "desired": a.desired} for a in apps]}
    tmp = ctx.dump_path + ".tmp"
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        json.dump(dump, f, indent=1)
    os.replace(tmp, ctx.dump_path)
    return {"path": ctx.dump_path, "apps": [a.name for a in apps]}


@command("resurrect")
async def resurrect(ctx: Context, args: dict[str, Any]) -> Any:
    sup = ctx.supervisor
    try:
        with open(ctx.dump_path) as f:
            dump = json.load(f)
    except FileNotFoundError:
        raise UserError(f"nothing saved yet ({ctx.dump_path} does not exist): run `corral save` first") from None
    except ValueError as exc:
        raise UserError(f"{ctx.dump_path}: not a valid dump ({exc})") from None
    restored = []
    for entry in dump.get("apps", []):
        spec = dict(entry["spec"])
        base_env = spec.pop("base_env", {})
        if spec["name"] in sup.apps:
            continue
        app = sup.add_app(spec, base_env)
        if entry.get("desired", "online") == "online":
            sup.start(app)
        restored.append(app)
    return {"rows": rows(sup, restored), "restored": [a.name for a in restored]}


@command("kill")
async def kill(ctx: Context, args: dict[str, Any]) -> Any:
    """Stop every app gracefully, forget them (``resurrect`` brings saved ones back), then exit."""
    sup = ctx.supervisor
    apps = list(sup.apps.values())
    await stop_ordered(sup, apps, lambda app: sup.stop(app, lc.After.DELETE))
    await _await(sup, lambda: not sup.apps, apps, "kill")
    sup.store.clear_apps()
    ctx.shutdown_requested = True
    return {"stopped": [a.name for a in apps], "pid": os.getpid()}


# log operations (log_paths, flush) live in their own module; imported last (it uses this one)
from corral.daemon.ops import logs as _logcommands  # noqa: E402,F401


# dependency order lives in its own module; imported last (it uses this one)
from corral.daemon.ops.ordering import start_ordered, stop_ordered  # noqa: E402

#: Operations whose handlers load on first use (rarely used: kept out of the daemon's memory).
LAZY = {"reload": "corral.daemon.ops.cluster", "scale": "corral.daemon.ops.cluster"}


def handler_for(op: str) -> Handler | None:
    if op not in HANDLERS and op in LAZY:
        import importlib

        importlib.import_module(LAZY[op])
    return HANDLERS.get(op)
