"""The core a feature is handed: clock, timers, the event bus, the control operations and a
read-only view.  Features (health, monitor, jobs, profile, deploy) use this and nothing else
of the daemon.

``DaemonCore`` is the daemon's implementation.  It owns the clock, the timers and the bus;
the supervisor attaches itself (for ``view``) and the control context (for ``call``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from corral.clock import Clock, SystemClock
from corral.daemon.bus import DEFAULT_MAXSIZE, Bus, Filter, Subscription
from corral.daemon.timers import Handle, Timers, loop_timers
from corral.events import Event

if TYPE_CHECKING:
    from corral.daemon.ops.apps import Context
    from corral.daemon.supervisor import Supervisor

__all__ = ["Core", "DaemonCore", "Snapshot", "AppView", "InstanceView", "Clock", "Timers", "Handle",
           "Subscription", "Event"]


@dataclass(frozen=True, slots=True)
class InstanceView:
    index: int
    status: str
    pid: int | None
    pgid: int | None
    restarts: int
    started_at: float | None  # wall time


@dataclass(frozen=True, slots=True)
class AppView:
    name: str
    id: int
    namespace: str
    desired: str
    instances: tuple[InstanceView, ...]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Apps, instances and pids at one moment (``taken_at``, wall time)."""

    taken_at: float
    apps: tuple[AppView, ...]

    def app(self, name: str) -> AppView | None:
        return next((a for a in self.apps if a.name == name), None)

    def pgids(self) -> dict[int, tuple[str, int]]:
        """The process group of every running instance -> (app, instance)."""
        return {i.pgid: (a.name, i.index) for a in self.apps for i in a.instances if i.pgid is not None}


class Core(Protocol):
    clock: Clock
    timers: Timers  # at(when, fn), after(delay, fn), every(interval, fn, jitter=0) -> Handle

    def publish(self, event: Event) -> None: ...

    def subscribe(self, *kinds: type[Event], maxsize: int = DEFAULT_MAXSIZE) -> Subscription: ...

    async def call(self, op: str, **args: Any) -> Any: ...  # the control socket's operations

    def view(self) -> Snapshot: ...


class DaemonCore:
    """Clock, timers and bus for one daemon (or one ``corral run``)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, clock: Clock | None = None,
                 timers: Timers | None = None) -> None:
        self.clock: Clock = clock or SystemClock()
        self.timers: Timers = timers or loop_timers(loop, self.clock)
        self.bus = Bus(self.clock)
        self.supervisor: Supervisor | None = None
        self.context: Context | None = None

    def publish(self, event: Event) -> None:
        self.bus.publish(event)

    def subscribe(self, *kinds: type[Event], maxsize: int = DEFAULT_MAXSIZE,
                  where: Filter | None = None) -> Subscription:
        return self.bus.subscribe(*kinds, maxsize=maxsize, where=where)

    async def call(self, op: str, **args: Any) -> Any:
        """Run a control operation as the socket would (``UserError``/``OperationFailed`` raise)."""
        from corral.daemon.ops.apps import handler_for

        handler = handler_for(op)
        if handler is None or self.context is None:
            raise LookupError(f"no operation {op!r}" if handler is None else "no control context attached")
        return await handler(self.context, args)

    def view(self) -> Snapshot:
        apps: list[AppView] = []
        sup = self.supervisor
        for app in sorted(sup.apps.values(), key=lambda a: a.id) if sup is not None else []:
            instances = tuple(
                InstanceView(s.index, s.status.value, s.child.pid if s.child else None,
                             s.pgid if s.child else None, s.state.restarts, s.started_wall if s.child else None)
                for s in app.slots)
            apps.append(AppView(app.name, app.id, app.namespace, app.desired, instances))
        return Snapshot(self.clock.now(), tuple(apps))
