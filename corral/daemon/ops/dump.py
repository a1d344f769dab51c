"""Control operations for the saved app list: ``save`` writes ``dump.json``, ``resurrect`` starts
its apps again.  Loaded on first use (``ops.apps.LAZY``).

``resurrect`` trusts nothing in the file: it reads a regular file of bounded size, and an entry
whose spec does not load (``AppSpec.from_dict`` checks every value) is skipped and reported, one
``skipped`` event and one daemon.log line each, while the other entries are restored.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from typing import Any

from corral.config.spec import AppSpec
from corral.config.speccheck import log_paths_problem
from corral.control.ops import MAX_ENV, env_problem
from corral.daemon.ops.apps import Context, UserError, command, rows
from corral.events import Note
from corral.exceptions import OperationFailed

log = logging.getLogger("corral.daemon")
MAX_DUMP = 64 * 1024 * 1024


@command("save")
async def save(ctx: Context, args: dict[str, Any]) -> Any:
    apps = sorted(ctx.supervisor.apps.values(), key=lambda a: a.id)
    dump = {"version": 1, "saved_at": time.time(),
            "apps": [{"spec": a.stored_spec(), "desired": a.desired} for a in apps]}
    tmp = ctx.dump_path + ".tmp"
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)  # a leftover keeps its mode: the new file is created 0600, never chmodded
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600), "w") as f:
            json.dump(dump, f, indent=1)
        os.replace(tmp, ctx.dump_path)
    except OSError as exc:  # a full disk: the previous dump stays as it was
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise OperationFailed(f"cannot save to {ctx.dump_path}: {exc.strerror or exc} "
                              "(the previous save is kept)") from None
    return {"path": ctx.dump_path, "apps": [a.name for a in apps]}


@command("resurrect")
async def resurrect(ctx: Context, args: dict[str, Any]) -> Any:
    """Start the apps of ``dump.json``; an entry that does not load is skipped and reported
    (one ``skipped`` event and one daemon.log line each), never the end of the others."""
    sup = ctx.supervisor
    restored, skipped, present = [], [], []
    for index, entry in enumerate(_read_dump(ctx.dump_path)):
        try:
            stored = dict(entry["spec"])
            base_env = stored.pop("base_env", {})
            if env_problem(base_env, MAX_ENV) is not None:
                raise ValueError("base_env: not an environment")
            inferred = stored.pop("listen_inferred", None)  # a Node app in cluster mode: its ports
            if inferred is not None:
                from corral.daemon.nodeapps import checked_inferred

                inferred = checked_inferred(inferred)
            spec = AppSpec.from_dict(stored)
            problem = log_paths_problem(stored)
            if problem is not None:
                raise ValueError(problem)
        except (KeyError, TypeError, ValueError) as exc:
            name = _entry_name(entry)
            problem = f"{ctx.dump_path}: apps[{index}]{name and f' {name!r}'}: skipped: {exc}"
            log.error("%s", problem)
            sup.publish(Note(app=name or "-", kind="skipped", message=problem))
            skipped.append(problem)
            continue
        if spec.name in sup.apps:  # already here (started again, or never stopped): left as it is
            present.append(spec.name)
            continue
        app = sup.add_app(spec, base_env, inferred=inferred)
        if entry.get("desired", "online") == "online":
            sup.start(app)
        restored.append(app)
    return {"rows": rows(sup, restored), "restored": [a.name for a in restored], "skipped": skipped,
            "present": present}



def _read_dump(path: str) -> list[Any]:
    """The entries of ``dump.json`` (a regular file, at most :data:`MAX_DUMP` bytes)."""
    import stat

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except FileNotFoundError:
        raise UserError(f"nothing saved yet ({path} does not exist): run `corral save` first") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror})") from None
    with open(fd, "rb") as f:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_DUMP:
            raise UserError(f"{path}: not a dump (a regular file of at most {MAX_DUMP >> 20} MiB)")
        data = f.read(MAX_DUMP + 1)
    try:
        dump = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise UserError(f"{path}: not a valid dump ({str(exc)[:200]})") from None
    entries = dump.get("apps") if isinstance(dump, dict) else None
    if not isinstance(entries, list):
        raise UserError(f'{path}: not a valid dump (no list of "apps")')
    return entries


def _entry_name(entry: Any) -> str:
    spec = entry.get("spec") if isinstance(entry, dict) else None
    name = spec.get("name") if isinstance(spec, dict) else None
    return name if isinstance(name, str) and len(name) <= 64 else ""
