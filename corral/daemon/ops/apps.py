"""One handler per control operation.  Handlers return JSON-able results or raise UserError.

Mutating commands wait for the state they asked for (every instance stopped,
restarted or removed) with a deadline, so the CLI can report the outcome.
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from functools import partial
from typing import Any, Awaitable, Callable

from corral import __version__
from corral.config.spec import AppSpec
from corral.config.speccheck import log_paths_problem
from corral.events import AppRemoved
from corral.exceptions import OperationFailed, UserMistake
from corral.lifecycle import instance as lc
from corral.config.plan import Change, plan
from corral.control.protocol import Encoded
from corral.daemon.ops.mutation import holding
from corral.daemon.supervisor import App, Status, Supervisor

Handler = Callable[["Context", dict[str, Any]], Awaitable[Any]]
HANDLERS: dict[str, Handler] = {}
MASK = "********"
SETTLE_MARGIN = 10.0


class UserError(UserMistake):
    """The request names something that does not exist or is not allowed."""


#: A long operation's way to send ``progress`` messages before its reply (set by the server for
#: the operation's task; None when it runs through ``Core.call``).
PROGRESS: ContextVar[Callable[[Any], None] | None] = ContextVar("PROGRESS", default=None)


class Context:
    def __init__(self, supervisor: Supervisor, dump_path: str) -> None:
        self.supervisor = supervisor
        self.dump_path = dump_path
        self.shutdown_requested = False


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
    left_out = sup.store.skipped.get(target)
    if left_out is not None:
        raise UserError(f'app "{target}" was left out when the daemon started ({left_out.reason}): '
                        f'`corral delete {target}` removes it, a `corral start` of that name replaces it')
    known = ", ".join(a.name for a in apps) or "none yet"
    raise UserError(f'no app, id or namespace named "{target}" (apps: {known})')


def specs_of(args: dict[str, Any]) -> list[AppSpec]:
    """The specs a start, restart or reload carries, each checked (``AppSpec.from_dict``) before
    anything changes: one that is not valid refuses the whole request with one line."""
    specs = []
    for index, data in enumerate(args.get("apps") or []):
        try:
            spec = AppSpec.from_dict(data)
            problem = log_paths_problem(data)
            if problem is not None:
                raise ValueError(problem)
        except ValueError as exc:
            name = data.get("name") if isinstance(data, dict) else None
            label = f' "{name}"' if isinstance(name, str) and len(name) <= 64 else ""
            raise UserError(f"apps[{index}]{label}: {exc}") from None
        specs.append(spec)
    return specs


def _settle_time(apps: list[App]) -> float:
    return max([a.policy.kill_timeout for a in apps] + [0.0]) + SETTLE_MARGIN


async def _await(sup: Supervisor, predicate: Callable[[], bool], apps: list[App], what: str) -> None:
    if not await sup.wait_for(predicate, _settle_time(apps)):
        raise OperationFailed(f"{what} did not finish in time for: {', '.join(a.name for a in apps)}")


# -- rows ---------------------------------------------------------------------------------
def rows(sup: Supervisor, apps: list[App] | None = None) -> list[dict[str, Any]]:
    latest = sup.core.latest  # the monitor's samples; else CPU since the last look
    usage: dict[int, tuple[float, int]] | None = None
    out = []
    for app in sorted(apps if apps is not None else sup.apps.values(), key=lambda a: a.id):
        log_loss = app.log_loss.summary()  # the app's, on each of its rows
        for slot in app.slots:
            running = slot.child is not None
            sample = latest.get((app.name, slot.index)) if running else None
            if sample is not None and sample["pid"] != slot.child.pid:  # type: ignore[union-attr]
                sample = None  # of the instance it replaces (a rolling reload)
            if sample is not None:
                cpu, mem = sample["cpu"], sample["rss"]
            elif running:  # not sampled yet (or monitoring is off): since the last look
                usage = sup.sample_usage() if usage is None else usage
                cpu, mem = usage.get(slot.pgid or -1, (0.0, 0))
            else:
                cpu, mem = 0.0, 0
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
                "log_loss": log_loss,
                **({"sample": sample} if sample is not None else {}),
            })
    return out


def mask_env(env: dict[str, str], extra_keys: list[str] | None = None) -> dict[str, str]:
    """Values of secret names masked: the logs' rule (``is_secret_name``, plus the app's
    ``redact_keys``); in the other values, the passwords of URLs (``postgres://u:********@h/db``)."""
    from corral.app.redact import Redactor, is_secret_name, redact_url_credentials

    secret = Redactor(extra_keys).is_sensitive_key if extra_keys else is_secret_name
    return {k: (MASK if secret(k) else redact_url_credentials(v, MASK)) for k, v in env.items()}


def mask_args(args: list[str]) -> list[str]:
    """Arguments with the passwords of URLs masked (``--db postgres://u:********@h/db``)."""
    from corral.app.redact import redact_url_credentials

    return [redact_url_credentials(a, MASK) for a in args]


# -- operations ---------------------------------------------------------------------------
@command("ping")
async def ping(ctx: Context, args: dict[str, Any]) -> Any:
    sup = ctx.supervisor
    out = {"pid": os.getpid(), "version": __version__, "apps": len(sup.apps), "bus": sup.bus.stats(),
           "tracking": "cgroup" if sup.tracker.cgroups is not None else "marker", "store": sup.store.status()}
    return {**out, **_monitoring(sup)}


def _monitoring(sup: Supervisor) -> dict[str, Any]:
    """The daemon-wide settings and the monitor's state (``ping --json``, ``describe``)."""
    core = getattr(sup, "core", None)  # a stand-in supervisor (tests) may have none
    if core is None:
        return {}
    settings = core.settings()
    if settings:
        from corral.daemon.settings import shown

        settings = shown(settings)
    monitor = core.features.get("monitor")
    return {"settings": dict(settings), "monitor": monitor.status() if monitor is not None else None}


@command("ls")
async def ls(ctx: Context, args: dict[str, Any]) -> Any:
    return rows(ctx.supervisor) + skipped_rows(ctx.supervisor)


def skipped_rows(sup: Supervisor) -> list[dict[str, Any]]:
    """The stored apps recovery left out: status ``skipped``, with the reason."""
    return [{"name": name, "id": s.app_id, "namespace": "default", "instance": 0, "pid": None,
             "status": "skipped", "restarts": 0, "started_at": None, "cpu_percent": 0.0, "memory_bytes": 0,
             "reason": s.reason} for name, s in sup.store.skipped.items()]


@command("start")
async def start(ctx: Context, args: dict[str, Any]) -> Any:
    """Start apps from specs (a file or a command line), or existing apps by target.

    What happens to an app that exists already is decided in one place (``config.plan``);
    an app held by another mutation refuses the whole command before anything changes.
    """
    sup = ctx.supervisor
    base_env = args.get("base_env") or {}
    if args.get("host"):  # the file's daemon-wide settings: checked, kept, applied
        from corral.daemon.settings import apply

        apply(sup.core, sup.store, args["host"])
    decided: list[tuple[App | None, AppSpec, Change]] = []
    for spec in specs_of(args):
        app = sup.apps.get(spec.name)
        if app is not None and app.deleting:
            raise UserError(f'app "{app.name}" is being deleted; try again')
        if app is not None and args.get("derived"):
            from corral.daemon.ops.instances import refuse_other_command

            refuse_other_command(app, spec.to_dict())
        running = app is not None and _running(app)
        decided.append((app, spec, plan(app.spec.to_dict() if app else None, spec.to_dict(), running)))
    targets = resolve(sup, args["target"]) if args.get("target") else []
    with holding(sup, "start") as hold:
        hold.take([a for a, _, change in decided if a is not None and change is not Change.UNCHANGED] + targets)
        notes: list[str] = []
        launches: dict[str, tuple[App, Any]] = {}
        touched: dict[str, App] = {}
        for app, spec, change in decided:
            app, how, note = _apply_plan(sup, app, spec, change, base_env)
            if change is not Change.UNCHANGED:
                hold.take([app])  # a new app: never held by anything else
            touched[app.name] = app
            if note:
                notes.append(f"{app.name}: {note}")
            if how is not None:
                launches[app.name] = (app, how)
        for app in targets:
            launches[app.name] = (app, partial(sup.start, by="corral start"))
            touched[app.name] = app
        apps = list(touched.values())

        def launch(app: App) -> Any:
            with sup.store.batch():  # one transaction for the whole burst of spawns
                return launches[app.name][1](app)

        await start_ordered(sup, [a for a, _ in launches.values()], launch)
        await _await(sup, lambda: all(_settled(a) for a in apps), apps, "start")
    errors = [f"{a.name}[{s.index}]: {s.spawn_error}" for a in apps for s in a.slots
              if s.status in (Status.ERRORED, Status.WAITING_RESTART) and s.spawn_error]
    return {"rows": rows(sup, apps), "notes": notes, "errors": errors}


def _running(app: App) -> bool:
    return any(s.status in lc.RUNNING or s.status is Status.WAITING_RESTART for s in app.slots)


def _settled(app: App) -> bool:
    """Nothing of the app is on its way out: no instance stopping, none past ``instances``."""
    if app.deleting:
        return True
    return not any(s.status is Status.STOPPING or s.index >= app.state.instances for s in app.slots)


def _apply_plan(sup: Supervisor, app: App | None, spec: AppSpec, change: Change,
                base_env: dict[str, str]) -> tuple[App, Any, str | None]:
    """Carry out ``plan``'s decision for one app: (the app, how to launch it, a note for the user)."""
    start = partial(sup.start, by="corral start")
    if app is None:
        return sup.add_app(spec, base_env), start, None
    if change is Change.UNCHANGED:
        if app.desired == "online":
            return app, None, "already running"
        return app, start, None
    sup.update_app(app, spec, base_env)
    if change is Change.START:
        return app, start, None
    if change is Change.HOT_UPDATE:
        sup.resize(app)
        return app, None, "configuration changed, applied without a restart"
    if change is Change.ROLLING_RELOAD:
        return app, partial(_reload_rolling, sup), "configuration changed, reloaded"
    return app, partial(_restart, sup, by="corral start: configuration changed"), "configuration changed, restarted"


async def _reload_rolling(sup: Supervisor, app: App) -> None:
    from corral.daemon.ops.reload import ReloadFailed, rolling_reload

    try:
        await rolling_reload(sup, app)
    except ReloadFailed as exc:
        raise OperationFailed(str(exc)) from None
    sup.resize(app)


def _restart(sup: Supervisor, app: App, by: str = "corral restart") -> None:
    sup.set_desired(app, "online")
    sup.resize(app)
    sup.stop(app, lc.After.RESTART, by)


@command("stop")
async def stop(ctx: Context, args: dict[str, Any]) -> Any:
    sup = ctx.supervisor
    apps = resolve(sup, args.get("target"))
    by = args.get("by") or "corral stop"
    if not await stop_ordered(sup, apps, lambda app: sup.stop(app, by=by)):
        raise OperationFailed(f"stop did not finish in time for: {', '.join(a.name for a in apps)}")
    return {"rows": rows(sup, apps)}


@command("restart")
async def restart(ctx: Context, args: dict[str, Any]) -> Any:
    sup = ctx.supervisor
    apps = resolve(sup, args.get("target"))
    specs = {s.name: s for s in specs_of(args)}
    with holding(sup, "restart", apps):
        for app in apps:
            if app.name in specs:
                sup.update_app(app, specs[app.name], args.get("base_env") or app.base_env)
            _restart(sup, app, args.get("by") or "corral restart")
        await _await(sup, lambda: all(_settled(a) for a in apps), apps, "restart")
    return {"rows": rows(sup, apps)}


@command("delete")
async def delete(ctx: Context, args: dict[str, Any]) -> Any:
    sup = ctx.supervisor
    target = args.get("target")
    left_out = [n for n, s in sup.store.skipped.items()
                if target in ("all", n) or (s.app_id is not None and target == str(s.app_id))]
    for name in left_out:  # a stored app recovery left out: only its row to delete
        sup.store.forget_skipped(name)
        sup.publish(AppRemoved(app=name))
    apps = resolve(sup, target) if target == "all" or not left_out else []
    for app in apps:
        sup.stop(app, lc.After.DELETE)
    await _await(sup, lambda: not any(a.name in sup.apps for a in apps), apps, "delete")
    return {"deleted": [a.name for a in apps] + left_out}


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

    spec = {**app.spec.to_dict(), "env": mask_env(app.spec.env, app.spec.redact_keys)}
    for key in ("args", "cmd", "interpreter_args"):
        if spec.get(key):
            spec[key] = mask_args(spec[key])
    instances = []
    for slot, row in zip(app.slots, rows(sup, [app])):
        live = slot.log_paths if slot.child is not None else None
        out_log, err_log = live or sup.logs.paths(app.spec, slot.index)
        instances.append({**row, "out_log": out_log, "err_log": err_log, "last_exit": slot.last_exit,
                          "status_text": slot.status_text})
    return {
        "name": app.name,
        "id": app.id,
        "namespace": app.namespace,
        "desired": app.desired,
        "argv": mask_args(_argv(sup, app)),
        "listen": sup.sockets.resolved(app.name, app.spec.listen) + list(app.inferred),
        "listen_inferred": {address: list(slots) for address, slots in app.inferred.items()},
        "config": spec,
        "instances": instances,
        "events": sup.store.events(app.name, 20),
        "last_crash": last_crash(sup.store, app.name),
        "evidence": _evidence(sup, app.name),
        "log_loss": app.log_loss.details(),
        "bus": {"dropped": sup.bus.dropped, "subscribers": len(sup.bus.subscriptions)},
        "store": sup.store.status(),
        **_monitoring(sup),
    }


def _evidence(sup: Supervisor, app: str) -> dict[str, Any] | None:
    """What the last instance corral replaced on its own was doing (``corral.daemon.ops.profile``)."""
    for event in reversed(sup.store.events(app, 200)):
        if event["kind"] == "evidence":
            return {"ts": event["ts"], "instance": event["instance"], "summary": event["message"], **event["data"]}
    return None


def _argv(sup: Supervisor, app: App) -> list[str]:
    from corral.config.command import resolve_argv

    argv = resolve_argv(app.spec, sup.python)
    if app.node_cluster:  # as it runs: with corral's preload
        from corral.config.command import with_preload
        from corral.daemon.nodeapps import PRELOAD

        argv = with_preload(argv, PRELOAD)
    return argv


@command("events")
async def events(ctx: Context, args: dict[str, Any]) -> Any:
    target, limit = args.get("target"), int(args.get("limit") or 50)
    if not target or target == "all":  # encoded as read: a long history never exists as dicts
        return Encoded(ctx.supervisor.store.events_json(None, limit))
    return history(ctx.supervisor, target, limit)


def is_job(sup: Supervisor, target: Any) -> bool:
    """``target`` names a job (``corral events backup``) and no app."""
    service = sup.core.features.get("jobs")
    return target not in sup.apps and service is not None and target in service.jobs


def history(sup: Supervisor, target: Any, limit: int) -> list[dict[str, Any]]:
    """The last ``limit`` stored events of the target apps (all apps for None or "all")."""
    if target and target != "all":
        names = [target] if is_job(sup, target) else [a.name for a in resolve(sup, target)]
        found = [e for n in names for e in sup.store.events(n, limit)]
        return sorted(found, key=lambda e: e["ts"])[-limit:] if limit > 0 else []
    return sup.store.events(None, limit)


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


# dependency order lives in its own module; imported last (it uses this one)
from corral.daemon.ops.ordering import start_ordered, stop_ordered  # noqa: E402

#: Operations whose handlers load on first use (rarely used: kept out of the daemon's memory).
LAZY = {"metrics": "corral.daemon.ops.metrics", "replace": "corral.daemon.ops.metrics",
        "reload": "corral.daemon.ops.cluster", "scale": "corral.daemon.ops.cluster",
        "log_paths": "corral.daemon.ops.logs", "flush": "corral.daemon.ops.logs",
        "save": "corral.daemon.ops.dump", "resurrect": "corral.daemon.ops.dump",
        "reset": "corral.daemon.ops.instances", "env": "corral.daemon.ops.instances",
        "alerts": "corral.daemon.ops.alerts", "alerts_test": "corral.daemon.ops.alerts",
        "deploy_event": "corral.daemon.ops.deploy",
        **dict.fromkeys(("jobs", "jobs_run", "jobs_history", "jobs_pause", "jobs_resume"), "corral.daemon.ops.jobs"),
        "profile": "corral.daemon.ops.profile"}


def handler_for(op: str) -> Handler | None:
    if op not in HANDLERS and op in LAZY:
        import importlib

        importlib.import_module(LAZY[op])
    return HANDLERS.get(op)
