"""``corral alerts [--json]`` (recent alerts and their delivery) and ``corral alerts test``."""

from __future__ import annotations

import argparse
import time
from typing import Any

from corral.cli import render
from corral.cli.main import emit_json
from corral.control.client import Client


def cmd_alerts(args: argparse.Namespace) -> int:
    if args.action == "test":
        return _test(args)
    result = Client().call("alerts", {"limit": max(0, min(args.lines, 10000))})
    if args.json:
        emit_json(result)
        return 0
    for line in alert_lines(result):
        print(line)
    return 0


def _test(args: argparse.Namespace) -> int:
    result = Client().call("alerts_test", {})
    if args.json:
        emit_json(result)
    else:
        for row in result["results"]:
            if row["outcome"] == "delivered":
                print(f"{render.clean(row['sink'])}: delivered")
            else:
                print(f"{render.clean(row['sink'])}: failed ({render.clean(row['reason'])})")
    return 0 if all(r["outcome"] == "delivered" for r in result["results"]) else 1


def alert_lines(result: dict[str, Any]) -> list[str]:
    lines = []
    if not result.get("alerts"):
        lines.append("no alerts yet")
    for alert in result.get("alerts", []):
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(alert.get("ts") or 0))
        lines.append(f"{when}  {alert.get('severity', '?'):8}  {render.clean(str(alert.get('title', '')))}")
        for sink, d in sorted(alert.get("deliveries", {}).items()):
            text = f"    {render.clean(str(sink))}: {d.get('outcome')}"
            if d.get("attempts"):
                text += f" after {d['attempts']} attempt(s)"
            if d.get("suppressed"):
                text += f", {d['suppressed']} identical suppressed before it"
            if d.get("reason") and d.get("outcome") != "delivered":
                text += f": {render.clean(str(d['reason']))}"
            lines.append(text)
    if result.get("loaded") and not result.get("sinks"):
        lines.append("no alert sinks configured: alerts go to daemon.log and `corral events` only")
    for counted in result.get("counted", []):
        lines.append(f"counted, not paged: {counted['crashes']} {counted['classification']} crash(es) of "
                     f"{render.clean(counted['app'])}")
    return lines
