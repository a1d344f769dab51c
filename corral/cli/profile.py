"""``corral profile cpu|stack|heap NAME [--instance N] [--duration 30s] [--format F] [--json]``.

The daemon's profiling helper writes the files (``CORRAL_HOME/profiles/<app>/``); this prints
their paths and the top functions by self time, or the stacks, or the heap report.
"""

from __future__ import annotations

import argparse
from typing import Any

from corral.cli import render
from corral.cli.main import emit_json
from corral.cli.parser import UsageError
from corral.control.client import Client

MAX_DURATION = 3600


def duration_of(text: str) -> int:
    """``--duration``: whole seconds from "30s", "2m" or a bare number of seconds; one line if not."""
    from corral.units import parse_duration

    try:
        seconds = float(text) if text.strip().isdigit() else parse_duration(text)
    except ValueError:
        raise UsageError(f'--duration: {text!r} is not a duration (try "30s" or "2m")') from None
    if not 1 <= seconds <= MAX_DURATION:
        raise UsageError(f"--duration: {text!r} is out of range (1s to {MAX_DURATION // 60}m)")
    return int(round(seconds))


def cmd_profile(args: argparse.Namespace) -> int:
    request: dict[str, Any] = {"target": args.target, "what": args.what}
    if args.what == "cpu":
        request["duration"] = duration_of(args.duration)
        if args.format:
            request["format"] = args.format
    elif args.format:
        raise UsageError("--format is for `profile cpu`")
    if args.instance is not None:
        if args.instance < 0:
            raise UsageError(f"--instance: {args.instance} is not an instance number (0, 1, ...)")
        request["instance"] = args.instance
    result = Client().call("profile", request)
    if args.json:
        emit_json(result)
        return 0
    print("\n".join(lines(result)))
    return 0


def lines(result: dict[str, Any]) -> list[str]:
    head = f"{render.clean(result['app'])}[{result['instance']}] pid {result['pid']} ({result.get('runtime', '?')})"
    out = [head]
    out.extend(f"  {render.clean(path)}" for path in result.get("files", []))
    top = result.get("top") or []
    if top:
        out.append(f"top {len(top)} functions by self time:")
        out.append(f"  {'self %':>6} {'samples':>8}  function (where)")
        for row in top:
            where = f" ({render.clean(row['where'])})" if row.get("where") else ""
            out.append(f"  {row['share']:6.1f} {row['samples']:8g}  {render.clean(row['function'])}{where}")
    text = result.get("text")
    if text:
        out.extend(render.clean(line) for line in str(text).rstrip("\n").splitlines())
    return out
