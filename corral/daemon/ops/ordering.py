"""Start and stop apps in ``depends_on`` order, waiting for each layer to settle."""

from __future__ import annotations

import inspect
from functools import partial
from typing import Any

from corral.events import Note
from corral.lifecycle import instance as lc
from corral.daemon.ops.apps import OperationFailed, UserError
from corral.daemon.supervisor import App, Status, Supervisor

MARGIN = 10.0


def _online(app: App) -> bool:
    """Every instance online and proven ready (notify, probe, a listening socket, listen_timeout)."""
    return bool(app.slots) and all(s.status is Status.ONLINE and s.state.ready for s in app.slots)


def _settled_all(apps: list[App]) -> bool:
    return all(_online(a) or _failed(a) for a in apps)


def _stopped_all(sup: Supervisor, apps: list[App]) -> bool:
    return all(s.status in lc.RESTING for a in apps for s in a.slots if a.name in sup.apps)


def _failed(app: App) -> bool:
    return any(s.status in (Status.ERRORED, Status.STOPPED) for s in app.slots)


def _layers(deps: dict[str, list[str]], stop: bool) -> list[list[str]]:
    """One layer when nothing depends on anything (the usual case: graphlib stays unloaded)."""
    if not any(deps.values()):
        return [sorted(deps)]
    from corral.lifecycle.order import CycleError, start_layers, stop_layers

    try:
        return stop_layers(deps) if stop else start_layers(deps)
    except CycleError as exc:
        raise UserError(str(exc)) from None


async def start_ordered(sup: Supervisor, apps: list[App], launch: Any) -> None:
    """Call ``launch(app)`` for each app once every app it depends on is ready."""
    deps = {a.name: list(a.spec.depends_on) for a in apps}
    for name, wanted in deps.items():
        for dep in wanted:
            if dep not in sup.apps:
                raise UserError(f'app "{name}" depends on "{dep}", which is not defined')
    layers = _layers(deps, stop=False)
    by_name = {a.name: a for a in apps}
    for layer in layers:
        for name in layer:
            app = by_name[name]
            needed = [sup.apps[d] for d in deps[name]]
            if needed:
                wait = max(d.policy.ready_wait() for d in needed) + MARGIN
                await sup.wait_for(partial(_settled_all, needed), wait)
                missing = [d.name for d in needed if not _online(d)]
                if missing:
                    message = f'not started: dependency "{missing[0]}" is not ready'
                    sup.publish(Note(app=name, kind="dependency", message=message))
                    raise OperationFailed(f'"{name}" was {message}')
            pending = launch(app)
            if inspect.isawaitable(pending):
                await pending


async def stop_ordered(sup: Supervisor, apps: list[App], dispatch_stop: Any) -> bool:
    """Stop apps dependents-first: each layer is stopped and settled before the next."""
    deps = {a.name: list(a.spec.depends_on) for a in apps}
    try:
        layers = _layers(deps, stop=True)
    except UserError:  # a cycle: stop them all at once
        layers = [[a.name for a in apps]]
    by_name = {a.name: a for a in apps}
    ok = True
    for layer in layers:
        group = [by_name[n] for n in layer]
        for app in group:
            dispatch_stop(app)
        wait = max([a.policy.kill_timeout for a in group] + [0.0]) + MARGIN
        ok = await sup.wait_for(
            partial(_stopped_all, sup, group), wait) and ok
    return ok
