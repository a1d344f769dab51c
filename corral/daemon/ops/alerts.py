"""``alerts`` and ``alerts_test``: what ``corral alerts`` shows and ``corral alerts test`` does.

The history (``alert`` and ``alert_delivery`` events in the store) says what was raised and how
each delivery ended; the alert service (loaded for the test, or by the first event that may
alert) adds what is still being retried, the sinks, and the crashes counted but not paged.
"""

from __future__ import annotations

from typing import Any

from corral.daemon.ops.apps import Context, UserError, command
from corral.monitor.alertservice import FEATURE, service_of

NO_SINKS = ("no alert sinks are configured: alerts go to daemon.log and `corral events` only "
            '(add [[sinks]] tables to the ecosystem file: type = "webhook", "email" or "command")')


@command("alerts")
async def alerts(ctx: Context, args: dict[str, Any]) -> Any:
    limit = int(args.get("limit") or 50)
    sup = ctx.supervisor
    found: dict[str, dict[str, Any]] = {}
    for event in sup.store.events_of(("alert", "alert_delivery"), max(limit, 1) * 8):
        data = event["data"]
        if event["kind"] == "alert":
            found[str(data.get("id"))] = {**data, "ts": event["ts"], "app": event["app"],
                                          "instance": event["instance"], "deliveries": {}}
        elif str(data.get("alert")) in found:
            found[str(data["alert"])]["deliveries"][data.get("sink")] = data
    service = sup.core.features.get(FEATURE)
    status: dict[str, Any] = {"sinks": [], "pending": [], "counted": [], "gave_up": 0}
    if service is not None:
        status = service.status()
        for entry in status.pop("recent"):
            if entry["id"] in found:
                for sink, delivery in entry["deliveries"].items():
                    found[entry["id"]]["deliveries"].setdefault(sink, delivery)
    rows = list(found.values())[-limit:] if limit > 0 else []
    for row in rows:
        for sink in row.get("sinks", []):
            row["deliveries"].setdefault(sink, {"sink": sink, "outcome": "pending", "attempts": 0, "reason": ""})
    return {"alerts": rows, **status, "loaded": service is not None}


@command("alerts_test")
async def alerts_test(ctx: Context, args: dict[str, Any]) -> Any:
    service = service_of(ctx.supervisor.core)
    if not service.sinks:
        raise UserError(NO_SINKS)
    return {"results": await service.test()}
