"""Control operations for logs: ``log_paths`` (the CLI reads and follows files itself) and ``flush``.

Registered on import (``corral.daemon.ops.apps`` imports this module last).
"""

from __future__ import annotations

from typing import Any

from corral.daemon.ops.apps import Context, UserError, command, resolve
from corral.daemon.supervisor import App, Supervisor


def _apps(sup: Supervisor, target: Any) -> list[App]:
    if target in (None, "", "all"):
        return sorted(sup.apps.values(), key=lambda a: a.id)
    return resolve(sup, target)


def log_files(sup: Supervisor, apps: list[App]) -> list[dict[str, Any]]:
    """One entry per distinct file: app, instance (None when merged), stream, path, format.

    The files each instance's process writes now, then the files the current spec names (an
    instance started before a ``scale`` keeps writing the file it opened until it restarts).
    """
    seen: set[str] = set()
    files = []
    for app in apps:
        merged = app.spec.instances > 1 and app.spec.merge_logs
        pairs = [(s.index, s.log_paths) for s in app.slots if s.child is not None and s.log_paths]
        pairs += [(i, sup.logs.paths(app.spec, i)) for i in sorted({s.index for s in app.slots}) or [0]]
        for index, (out, err) in pairs:
            for stream, path in (("out", out), ("err", err)):
                if path in seen or path.startswith("<"):
                    continue
                seen.add(path)
                files.append({
                    "app": app.name, "id": app.id, "instance": None if merged else index,
                    "stream": "both" if out == err else stream, "path": path,
                    "log_type": app.spec.log_type, "time": app.spec.time,
                    "log_retain": app.spec.log_retain, "log_max_age": app.spec.log_max_age,
                })
    return files


@command("log_paths")
async def log_paths(ctx: Context, args: dict[str, Any]) -> Any:
    sup = ctx.supervisor
    return log_files(sup, _apps(sup, args.get("target")))


@command("flush")
async def flush(ctx: Context, args: dict[str, Any]) -> Any:
    """Empty the log files of the target apps (default: all) and delete their rotated files."""
    sup = ctx.supervisor
    flush_file = getattr(sup.logs, "flush", None)
    if flush_file is None:
        raise UserError("this daemon writes no log files")
    apps = _apps(sup, args.get("target"))
    paths = [entry["path"] for entry in log_files(sup, apps)]
    combined = getattr(sup.logs, "combined_path", None)  # log_file: PM2's combined log
    if combined is not None:
        for app in apps:
            for index in sorted({s.index for s in app.slots}) or [0]:
                path = combined(app.spec, index)
                if path is not None and path not in paths:
                    paths.append(path)
    touched: list[str] = []
    for path in paths:
        touched += flush_file(path)
    return {"files": touched}
