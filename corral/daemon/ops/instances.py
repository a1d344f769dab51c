"""PM2's ``reset`` (restart counters to 0) and ``env`` (an instance's environment), and the check
that keeps a derived name from replacing another command.  Loaded on first use (``ops.apps.LAZY``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from corral.daemon.ops.apps import Context, UserError, command, mask_args, mask_env, resolve, rows
from corral.daemon.supervisor import App
from corral.events import Note

MAX_ENVIRON = 1 << 20  # bytes of /proc/PID/environ read (Linux caps an environment well below)


@command("reset")
async def reset(ctx: Context, args: dict[str, Any]) -> Any:
    """Set the restart counters of the target apps to 0 (``restarts`` and the run of fast
    failures the backoff counts), as PM2's ``reset``; the processes are left alone."""
    sup = ctx.supervisor
    apps = resolve(sup, args.get("target"))
    for app in apps:
        for slot in app.slots:
            slot.state = replace(slot.state, restarts=0, fast_failures=0)
            if slot.child is not None:
                sup._save_instance(slot)  # recovery after a daemon restart keeps the 0
        sup.publish(Note(app=app.name, kind="reset", message="restart counters set to 0"))
    return {"rows": rows(sup, apps)}


@command("env")
async def env(ctx: Context, args: dict[str, Any]) -> Any:
    """Each instance's environment, secret values masked: a running one's as its process has it
    (``/proc/PID/environ``), a stopped one's as its next start would build it."""
    sup = ctx.supervisor
    out = []
    for app in resolve(sup, args.get("target")):
        for slot in app.slots:
            pid = slot.child.pid if slot.child is not None else None
            values = _environ(pid) if pid is not None else None
            if values is None:
                values = _next_env(app, slot.index)
            out.append({"name": app.name, "id": app.id, "instance": slot.index, "pid": pid,
                        "running": pid is not None, "env": mask_env(values, app.spec.redact_keys)})
    return out


def _environ(pid: int) -> dict[str, str] | None:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            data = f.read(MAX_ENVIRON)
    except OSError:
        return None
    pairs = (item.decode(errors="backslashreplace").partition("=") for item in data.split(b"\0") if item)
    return {key: value for key, _, value in pairs if key}


def _next_env(app: App, index: int) -> dict[str, str]:
    from corral.process.spawner import SpawnError, build_env

    try:
        return build_env(app.spec, index, app.base_env)
    except SpawnError as exc:
        raise UserError(f"{app.name}: {exc}") from None


def command_of(spec: dict[str, Any]) -> tuple[Any, ...]:
    return spec.get("script"), spec.get("args") or [], spec.get("cmd") or []


def refuse_other_command(app: App, new: dict[str, Any]) -> None:
    """A ``corral start`` without ``--name`` whose derived name is an app that runs another
    command: refused with the way out, never a silent replacement of the other app."""
    old = app.spec.to_dict()
    if command_of(old) == command_of(new):
        return
    script, argv, cmd = command_of(old)
    shown = " ".join(mask_args(cmd if cmd else [script, *argv]))
    raise UserError(f'"{app.name}" is already the name of an app that runs another command ({shown}): '
                    f"give this one a name of its own with --name NAME (or `corral delete {app.name}` first)")
