"""A read-only snapshot of apps, instances and pids: what ``Core.view()`` returns.

Loaded with the first call (features that never look need not pay for it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:
    from corral.daemon.supervisor import Supervisor


@dataclass(frozen=True, slots=True)
class InstanceView:
    index: int
    status: str
    pid: int | None
    pgid: int | None
    restarts: int
    started_at: float | None  # wall time
    ready: bool = False  # proven ready (its readiness probe passed, or it listens)


@dataclass(frozen=True, slots=True)
class AppView:
    name: str
    id: int
    namespace: str
    desired: str
    instances: tuple[InstanceView, ...]
    log_dropped: int = 0  # lines its log files never got (a full disk...), since this daemon added it
    log_dropped_bytes: int = 0
    log_withheld: int = 0  # lines written as "[line withheld: redaction failed]"
    max_memory_restart: int | None = None  # bytes (the monitor replaces an instance over it)
    thresholds: Mapping[str, Any] | None = None  # the app's own (corral.config.host.to_app_thresholds)
    health: Mapping[str, Any] | None = None  # its liveness probe (corral.config.cluster.to_health)
    listen: tuple[str, ...] = ()  # its sockets, ports as bound (given with a liveness probe only)
    cwd: str | None = None
    mutation: str | None = None  # the reload, scale, restart ... holding it now
    cron_restart: str | None = None  # its cron_restart schedule (corral.jobs restarts it)


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


def snapshot(sup: Supervisor | None, now: float) -> Snapshot:
    """The supervisor's apps and instances as they are now (copies: changing them changes nothing)."""
    apps: list[AppView] = []
    for app in sorted(sup.apps.values(), key=lambda a: a.id) if sup is not None else []:
        instances = tuple(
            InstanceView(s.index, s.status.value, s.child.pid if s.child else None,
                         s.pgid if s.child else None, s.state.restarts, s.started_wall if s.child else None,
                         s.state.ready)
            for s in app.slots)
        loss = app.log_loss
        spec = app.spec
        listen = tuple(sup.sockets.resolved(app.name, spec.listen)) if spec.health and sup is not None else ()
        mutation = app.state.mutation.kind if app.state.mutation is not None else None
        apps.append(AppView(app.name, app.id, app.namespace, app.desired, instances, loss.lines, loss.size,
                            loss.withheld, spec.max_memory_restart, spec.thresholds or None, spec.health,
                            listen, spec.cwd, mutation, spec.cron_restart))
    return Snapshot(now, tuple(apps))
