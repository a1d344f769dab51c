"""The verbs that act on targets, with PM2's habits: several targets (``stop 0 1``, ``restart api
worker``), an ecosystem file as a target (``restart ecosystem.config.js``), ``reset``, ``env``,
``jlist`` / ``prettylist`` and ``resurrect``.

Several targets are checked against the daemon's list first: one that names nothing refuses the
command before anything is done.  Loaded only by these commands (``cli.main`` names them lazily).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from corral.cli.main import emit_json, show_rows, warn
from corral.cli.parser import UsageError
from corral.control.client import Client

PAST = {"stop": "stopped", "restart": "restarted", "delete": "deleted", "reload": "reloaded", "reset": "reset"}


def command(op: str) -> Any:
    def run(args: argparse.Namespace) -> int:
        return on_targets(args, op)

    return run


def on_targets(args: argparse.Namespace, op: str) -> int:
    from corral.cli.start import is_config_file, start_or

    client = Client()
    rows: list[dict[str, Any]] = []
    deleted: list[str] = []
    status = 0
    for target in _checked(client, list(dict.fromkeys(args.targets)), op):
        if is_config_file(target) and op in ("restart", "reload"):  # PM2: start the new, restart the others
            status = max(status, start_or(_file_args(args, target), op))
            continue
        for name in _names_in(target, client) if is_config_file(target) else [target]:
            result = client.call(op, _request(args, op, name))
            if op == "delete":
                deleted += result["deleted"]
                continue
            if op == "reload" and not args.json:
                for line in result["replaced"]:
                    print(f"reloaded {line}")
            rows += result["rows"]
    if op == "delete":
        if args.json:
            emit_json({"deleted": deleted})
        else:
            print(f"deleted: {', '.join(dict.fromkeys(deleted)) or 'nothing'}")
        return status
    if rows or not any(is_config_file(t) for t in args.targets):
        show_rows(_unique(rows), args.json)
    return 1 if status or (op == "restart" and any(r["status"] == "errored" for r in rows)) else 0


def _request(args: argparse.Namespace, op: str, target: str) -> dict[str, Any]:
    request: dict[str, Any] = {"target": target}
    if op == "reload":
        request["parallel"] = args.parallel
    if getattr(args, "update_env", False):
        from corral.cli.start import reload_specs

        request.update(reload_specs(target))
    return request


def _file_args(args: argparse.Namespace, path: str) -> argparse.Namespace:
    """``restart FILE`` / ``reload FILE`` as ``startOrRestart FILE`` / ``startOrReload FILE``."""
    return argparse.Namespace(**{**vars(args), "file": path, "env": None, "only": None})


def _checked(client: Client, targets: list[str], op: str) -> list[str]:
    """TARGETS, once each; with several, every one must name something the daemon knows (an app,
    an id, a namespace, ``all``, or an ecosystem file that exists): else nothing is done."""
    if len(targets) < 2:
        return targets
    from corral.cli.start import is_config_file

    rows = client.call("ls")
    known = {"all"} | {r["name"] for r in rows} | {str(r["id"]) for r in rows if r["id"] is not None} \
        | {r.get("namespace", "default") for r in rows}
    for target in targets:
        if target not in known and not (is_config_file(target) and os.path.isfile(target)):
            apps = ", ".join(dict.fromkeys(r["name"] for r in rows)) or "none yet"
            raise UsageError(f'no app, id or namespace named "{target}" (apps: {apps}): nothing {PAST[op]}')
    return targets


def _names_in(path: str, client: Client) -> list[str]:
    """The apps of an ecosystem file that the daemon knows (``stop ecosystem.config.js``)."""
    from corral.config.errors import ConfigError
    from corral.config.load import load_file

    try:
        names = [spec["name"] for spec in load_file(path)]
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    known = {row["name"] for row in client.call("ls")}
    found = [name for name in names if name in known]
    if not found:
        raise UsageError(f"{path}: none of its apps ({', '.join(names)}) is known to the daemon")
    return found


def _unique(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per instance (the latest), in id order: ``stop api all`` lists api once."""
    by_key = {(r["name"], r["instance"]): r for r in rows}
    return sorted(by_key.values(), key=lambda r: (r["id"] if r["id"] is not None else -1, r["instance"]))


# -- lists ----------------------------------------------------------------------------------
def cmd_jlist(args: argparse.Namespace) -> int:
    """PM2's ``jlist``: the list as JSON on one line (``ls --json`` takes the fast path)."""
    import json

    print(json.dumps(_rows()))
    return 0


def cmd_prettylist(args: argparse.Namespace) -> int:
    emit_json(_rows())
    return 0


def _rows() -> list[dict[str, Any]]:
    from corral.control.client import DaemonUnavailable

    try:
        rows: list[dict[str, Any]] = Client().call("ls")
    except DaemonUnavailable as exc:
        print(f"corral: {exc} (`corral start` or `corral resurrect` starts one)", file=sys.stderr)
        rows = []
    return rows


# -- reset, env -----------------------------------------------------------------------------
def cmd_env(args: argparse.Namespace) -> int:
    """PM2's ``env ID``: the environment of each instance (secret values masked), ``KEY=value``."""
    from corral.cli.render import clean

    instances = Client().call("env", {"target": args.target})
    if args.json:
        emit_json(instances)
        return 0
    several = len(instances) > 1
    for inst in instances:
        if several:
            print(f"{clean(inst['name'])}[{inst['instance']}]{'' if inst['running'] else ' (not running)'}:")
        for key, value in sorted(inst["env"].items()):
            print(("  " if several else "") + clean(f"{key}={value}"))
    return 0


# -- resurrect ------------------------------------------------------------------------------
def cmd_resurrect(args: argparse.Namespace) -> int:
    result = Client(autostart=True).call("resurrect")
    for line in result.get("skipped", []):
        warn(line)
    present = ", ".join(result.get("present", []))
    if result["rows"]:
        show_rows(result["rows"], False)
        if present:
            print(f"already here, left as they are: {present}")
    elif present:
        print(f"nothing to resurrect: every saved app is already here ({present})")
    elif not result.get("skipped"):
        print("nothing to resurrect: the saved list is empty")
    return 1 if result.get("skipped") else 0
