"""Jobs and maintenance: cron, interval, at and on-start jobs declared in ecosystem files
(``corral.config.jobs``), the pure schedule (``schedule``), the service that runs them on the
daemon's core (``service``), their history (``history``) and the built-in maintenance
(``maintenance``, ``cleanup``).

This module is what the daemon always loads: a few lines.  The service loads when a file declares
jobs (or a stored setting does), when an app has ``cron_restart``, or with ``corral jobs``.  Until
then the maintenance jobs run on three plain timers (:class:`Maintenance`): each run is a
subprocess (``corral.jobs.cleanup``) whose start and end are events; the service, once loaded,
takes them over with the rest (history, pause, ``corral jobs``).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from corral.daemon.core import DaemonCore


#: The maintenance jobs (``corral.jobs.maintenance``) and how often each runs, in seconds.
EVERY = {"corral:cleanup-tmp": 3600.0, "corral:prune": 3600.0, "corral:disk": 300.0}


class Maintenance:
    """The maintenance timers of a daemon without the jobs service (its memory stays small)."""

    def __init__(self, core: DaemonCore) -> None:
        self.core = core
        self.handles: list[object] = []
        self.busy: set[str] = set()

    def configure(self) -> None:
        on = self.core.settings().get("maintenance", True) is not False and "jobs" not in self.core.features
        if on and not self.handles:
            self.handles = [self.core.timers.every(every, lambda name=name: self.fire(name))  # type: ignore[misc]
                            for name, every in EVERY.items()]
        elif not on:
            self.close()

    def close(self) -> None:
        for handle in self.handles:
            handle.cancel()  # type: ignore[attr-defined]
        self.handles = []

    def fire(self, name: str) -> None:
        if "jobs" in self.core.features:  # the service runs them now
            self.close()
            return
        if name in self.busy:
            return
        import asyncio

        from corral.jobs.maintenance import run_plain

        self.busy.add(name)
        asyncio.ensure_future(run_plain(self.core, name)).add_done_callback(lambda _: self.busy.discard(name))


def on_demand(core: DaemonCore) -> None:
    def load() -> None:
        if "jobs" not in core.features:
            from corral.jobs.service import service_of

            service_of(core)

    def settings_changed() -> None:
        if core.settings().get("jobs"):
            load()
        elif "maintenance" in core.features:
            core.features["maintenance"].configure()

    core.on_settings(settings_changed)
    if core.settings().get("jobs"):
        load()
        return
    maintenance = Maintenance(core)
    core.features["maintenance"] = maintenance
    maintenance.configure()
