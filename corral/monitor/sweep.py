"""The health sweep (H2): every ``sweep_interval`` (20 min), a report of the apps that should
run but are not online, or that restarted and have been up for less than 15 minutes
(flapping); ``errored`` apps are revived, at most once per sweep interval.

This is the mail provider's check done once, by the daemon: their cron revived errored apps
every 20 minutes and no more often, which is what keeps a broken app from a restart loop.

:func:`plan` is PURE (the snapshot and ``now`` come in); :class:`Sweeper` keeps when each app
was last revived and runs the plan on the core: ``restart`` for each app to revive, one
``sweep`` event (the alert service alerts when it lists problems).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from corral.events import Note

from corral.feature_events import SweepReport

if TYPE_CHECKING:
    from corral.daemon.core import Core
    from corral.daemon.core import Snapshot

log = logging.getLogger("corral.daemon")
FLAPPING = 15 * 60.0  # up for less than this after a restart: flapping
DEFAULT_INTERVAL = 20 * 60.0


@dataclass
class Plan:
    problems: list[dict[str, Any]] = field(default_factory=list)
    revive: list[str] = field(default_factory=list)


def plan(snap: Snapshot, now: float, last_revived: dict[str, float], interval: float) -> Plan:
    """What this sweep reports and revives.  An app revived less than ``interval`` ago is
    reported, not revived again."""
    out = Plan()
    for app in snap.apps:
        if app.desired != "online" or not app.instances:
            continue
        down = [i for i in app.instances if i.status != "online"]
        if down:
            statuses = sorted({i.status for i in down})
            out.problems.append({"app": app.name, "problem": f"not online ({len(down)} of {len(app.instances)}: "
                                 f"{', '.join(statuses)})", "statuses": statuses})
            if "errored" in statuses and now - last_revived.get(app.name, float("-inf")) >= interval:
                out.revive.append(app.name)
            continue
        young = [i for i in app.instances if i.restarts > 0 and i.started_at is not None
                 and now - i.started_at < FLAPPING]
        if young:
            up = min(now - (i.started_at or now) for i in young)
            restarts = max(i.restarts for i in young)
            out.problems.append({"app": app.name, "problem": f"flapping (up {up / 60:.0f} min after {restarts} "
                                 f"restart(s))", "up": round(up, 1), "restarts": restarts})
    return out


class Sweeper:
    def __init__(self, core: Core) -> None:
        self.core = core
        self.last_revived: dict[str, float] = {}
        self.runs = 0

    async def run(self, interval: float) -> SweepReport:
        now = self.core.clock.now()
        decided = plan(self.core.view(), now, self.last_revived, interval)
        revived = []
        for name in decided.revive:
            self.last_revived[name] = now
            try:
                await self.core.call("restart", target=name)
            except Exception as exc:  # gone, or held by another change: said; the next sweep tries again
                self.core.publish(Note(app=name, kind="sweep_revive_failed", message=f"sweep: could not revive "
                                       f"it: {exc}", data={"error": str(exc)}))
                continue
            revived.append(name)
            self.core.publish(Note(app=name, kind="revived", message="sweep: errored, restarted once "
                                   f"(at most once every {interval / 60:g} min)", data={"by": "sweep"}))
        self.last_revived = {k: v for k, v in self.last_revived.items() if self.core.view().app(k) is not None}
        self.runs += 1
        report = SweepReport(app="", problems=decided.problems, revived=revived)
        self.core.publish(report)
        return report
