"""``deploy_event``: a step of ``corral deploy`` into the events (a failed deploy alerts).

The deploy itself runs in the ``corral deploy`` process (git, builds and the bake window must
never hold the daemon's loop); it rolls the apps with ``reload`` and reads ``events``, and tells
the daemon what it did through this operation, so ``corral events`` shows it and the alert
service (``monitor.alerts``, kind ``deploy``) pages on a rollback.  Loaded on first use.
"""

from __future__ import annotations

from typing import Any

from corral.daemon.ops.apps import Context, command
from corral.feature_events import DeployFailed, DeployProgress


@command("deploy_event")
async def deploy_event(ctx: Context, args: dict[str, Any]) -> Any:
    kind = DeployFailed if args.get("failed") else DeployProgress
    ctx.supervisor.publish(kind(app=str(args["target"]), step=str(args["step"]), message=str(args["message"]),
                                release=str(args.get("release") or "")))
    return {"ok": True}
