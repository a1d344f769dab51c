"""Jobs and maintenance: cron, interval, at and on-start jobs declared in ecosystem files
(``corral.config.jobs``), the pure schedule (``schedule``), the service that runs them on the
daemon's core (``service``), their history (``history``) and the built-in maintenance
(``maintenance``, ``cleanup``).

This module is what the daemon always loads: a few lines.  The service loads when a file declares
jobs (or a stored setting does), with the first maintenance run, or with ``corral jobs``.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from corral.daemon.core import DaemonCore

FIRST_MAINTENANCE = 300.0  # seconds after the daemon starts: the maintenance jobs load then


def on_demand(core: DaemonCore) -> None:
    def load() -> None:
        if "jobs" not in core.features:
            from corral.jobs.service import service_of

            service_of(core)

    def settings_changed() -> None:
        if core.settings().get("jobs"):
            load()

    def maintenance_due() -> None:
        if core.settings().get("maintenance", True):
            load()

    core.on_settings(settings_changed)
    if core.settings().get("jobs"):
        load()
    else:
        core.timers.after(FIRST_MAINTENANCE, maintenance_due)
