"""``corral metrics [NAME] [--since 1h] [--json]``: the latest samples, with sparklines of the history.

Loaded only by this command.
"""

from __future__ import annotations

import argparse
from typing import Any

from corral.cli.main import emit_json
from corral.cli.parser import UsageError
from corral.control.client import Client

BARS = "▁▂▃▄▅▆▇█"
MIB = 1024 * 1024


def sparkline(values: list[float]) -> str:
    """One character per value, scaled from the lowest to the highest (flat: the lowest bar)."""
    if not values:
        return ""
    low, high = min(values), max(values)
    span = high - low
    return "".join(BARS[0] if span <= 0 else BARS[min(7, int((v - low) / span * 8))] for v in values)


def cmd_metrics(args: argparse.Namespace) -> int:
    from corral.units import parse_duration

    try:
        since = parse_duration(args.since) if any(c.isalpha() for c in args.since) else float(args.since)
    except ValueError:
        raise UsageError(f'--since: {args.since!r} is not a duration (try "1h" or "15m")') from None
    if not 1 <= since <= 366 * 86400:
        raise UsageError("--since: from 1s to 366d")
    request: dict[str, Any] = {"since": int(since)}
    if args.target:
        request["target"] = args.target
    report = Client().call("metrics", request)
    if args.json:
        emit_json(report)
        return 0
    print("\n".join(lines(report)))
    return 0


def lines(report: dict[str, Any]) -> list[str]:
    history = report.get("history") or {}
    series = history.get("instances") or {}
    host, out = report.get("host") or {}, []
    if host:
        cpu_line = sparkline([p[1] for p in history.get("host") or []])
        out.append(f"host  cpu {host['cpu']:5.1f}% {cpu_line}  memory available {host['memory_available']:.1f}% "
                   f"({host['memory_available_bytes'] / MIB:.0f} MiB)  load {' '.join(f'{x:.2f}' for x in host['load'])}")
    for path, mount in sorted((report.get("mounts") or {}).items()):
        out.append(f"disk  {path:<24} {mount['used']:5.1f}% used, {mount['free'] / MIB:.0f} MiB free")
    out.append(f"{'app':<20} {'inst':>4} {'pid':>7} {'cpu':>6} {'memory':>9} {'thr':>4} {'fds':>5} "
               f"{'restarts':>8}  cpu history / memory history")
    for inst in report.get("instances") or []:
        points = series.get(f"{inst['app']}:{inst['instance']}", [])
        out.append(f"{inst['app']:<20} {inst['instance']:>4} {inst['pid']:>7} {inst['cpu']:5.1f}% "
                   f"{inst['rss'] / MIB:7.1f}MB {inst['threads']:>4} {inst['fds']:>5} {inst['restarts']:>8}  "
                   f"{sparkline([p[1] for p in points])} / {sparkline([p[2] for p in points])}")
    if not report.get("instances"):
        out.append("(no instance sampled yet: samples come every "
                   f"{report.get('interval', 10):g}s)")
    return out
