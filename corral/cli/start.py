"""``corral start`` and PM2's ``startOrRestart`` / ``startOrReload``: what to start (a script, a
command, a program on PATH, an ecosystem file, or apps the daemon knows) and the specs sent.

Loaded only by these commands (``cli.main`` names them lazily).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from corral.cli.main import show_rows, warn
from corral.cli.parser import UsageError
from corral.control import protocol
from corral.control.client import Client

CONFIG_SUFFIXES = (".toml", ".yaml", ".yml", ".json", ".js", ".cjs", ".mjs")
NO_APP = "no app, id or namespace named "  # the daemon's message for a target that names nothing


def cmd_start(args: argparse.Namespace) -> int:
    target = args.target
    settings = settings_of(args)
    if target is None and not args.extra and not args.dashdash:
        raise UsageError("start what? `corral start app.py`, `corral start corral.toml` or `corral start -- CMD`")
    request: dict[str, Any] = {}
    if target is not None and is_config_file(target):
        host: dict[str, Any] = {}
        request["apps"] = load_config(target, args.env, args.only, settings, host)
        if "web" in host:  # the HTTP API and dashboard: the app corral-web, with the file's apps
            request["apps"].append(_web_app(host.pop("web"), target))
        if host:  # the file's daemon-wide settings: the last file that gives one wins
            request["host"] = host
    elif args.dashdash or (target is not None and (os.path.exists(target) or _looks_like_path(target))):
        if args.env or args.only:
            raise UsageError(f"--{'env' if args.env else 'only'} is for an ecosystem file (corral.toml ...)")
        request["apps"] = [_command_line_spec(target, args, settings)]
        request["derived"] = "name" not in settings  # a derived name never replaces another command
    elif settings:
        from corral.config.flags import flag_of

        raise UsageError(f"{flag_of(next(iter(settings)))}: settings are for a script, a command or a file; "
                         f"`corral start {target}` starts the app as it is (change its file, then start the file)")
    else:
        request["target"] = target
    if "apps" in request:
        jobs = request.get("host", {}).get("jobs") or []
        request["base_env"] = base_env(request["apps"] + [job["spec"] for job in jobs])
        if jobs:  # the jobs' runs start from this environment too (filtered per job, as an app's): sent once
            request["host"]["jobs_env"] = request["base_env"]
    try:
        result = Client(autostart=True).call("start", request)
    except protocol.RemoteError as exc:
        raise _with_program_hint(exc, target) from None
    return _report(result, args.json)


def _web_app(raw: Any, path: str) -> dict[str, Any]:
    from corral.cli.web import web_spec
    from corral.config.host import to_web
    from corral.paths import Home

    return web_spec(Home.from_env(), to_web(raw), os.path.dirname(os.path.abspath(path)))


def _report(result: dict[str, Any], as_json: bool) -> int:
    for note in result.get("notes", []):
        warn(note)
    for error in result.get("errors", []):
        warn(error)
    show_rows(result["rows"], as_json)
    return 1 if result.get("errors") or any(r["status"] == "errored" for r in result["rows"]) else 0


def _with_program_hint(exc: protocol.RemoteError, target: str | None) -> protocol.RemoteError:
    """``corral start npm`` where npm is no app but a program: say how to run the program."""
    import shutil

    if target and exc.message.startswith(NO_APP) and "/" not in target and shutil.which(target):
        return protocol.RemoteError(exc.code, f"{exc.message}; to run the program {target}: corral start {target} --")
    return exc


def is_config_file(target: str) -> bool:
    base = os.path.basename(target)
    return base.endswith(CONFIG_SUFFIXES[:4]) or base.startswith("ecosystem") or base.endswith(".config.js")


def _looks_like_path(target: str) -> bool:
    return "/" in target or os.path.splitext(target)[1] in (".py", ".js", ".mjs", ".cjs", ".sh", ".ts")


def settings_of(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given as flags (``-i 4``, ``--kill-timeout 3s`` ...), raw, by key.  PM2's
    flags for keys corral does not implement yet are named in one warning line and left out."""
    from corral.config.fields import FIELD_BY_NAME
    from corral.config.flags import flag_of, settings_from_flags

    settings = settings_from_flags(args, os.getcwd())
    pending = [key for key in settings if key not in FIELD_BY_NAME]
    if pending:
        warn(f"warning: command line: not supported yet, ignored: {', '.join(flag_of(k) for k in pending)}")
    return {key: value for key, value in settings.items() if key in FIELD_BY_NAME}


def load_config(path: str, env_name: str | None, only: str | None,
                settings: dict[str, Any] | None = None, host: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The apps of a file that will start: every value checked, and what they name on this machine."""
    from corral.config.errors import ConfigError
    from corral.config.load import ignored_warnings, load_file

    warnings: list[str] = []
    try:
        specs = load_file(path, env_name=env_name, only=only, overrides=settings, check_files=True,
                          warnings=warnings, host=host)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    for line in warnings + ignored_warnings(path, specs):
        warn(f"warning: {line}")
    return specs


def _command_line_spec(target: str | None, args: argparse.Namespace, settings: dict[str, Any]) -> dict[str, Any]:
    """``corral start app.py [-- args]``, ``corral start -- CMD ...``, or PM2's ``start npm -- start``
    (a target that is no file but a program on PATH: the command is the program and the args)."""
    from corral.config.errors import ConfigError
    from corral.config.load import from_command_line

    extra = list(args.extra)
    if target is not None and not os.path.exists(target):
        import shutil

        if _looks_like_path(target) or not shutil.which(target):
            raise UsageError(f"{target}: no such file" + ("" if _looks_like_path(target) else " nor program on PATH"))
        target, extra = None, [target, *extra]
    elif target is not None and not settings.get("shell"):
        target = os.path.abspath(target)  # even with --cwd
    try:
        return from_command_line(target, extra, cwd=os.getcwd(), extra=settings, check_files=True)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None


def base_env(specs: list[dict[str, Any]]) -> dict[str, str]:
    """This shell's environment as the apps may keep it: no secrets unless an app's
    ``env_inherit`` asks for them (the daemon filters again, per app); says what it keeps back."""
    from corral.config.environ import inherited, withheld

    patterns = {p for spec in specs for p in spec.get("env_inherit") or ()}
    kept_back = withheld(os.environ, patterns)
    if kept_back:
        print(f"corral: not passed on from this shell (secrets; list them in env_inherit to pass them): "
              f"{', '.join(kept_back)}", file=sys.stderr)
    return inherited(os.environ, patterns)


def reload_specs(target: str) -> dict[str, Any]:
    """For --update-env: the apps' specs read again from their files, and this shell's environment."""
    client = Client()
    infos = client.call("describe", {"target": target})
    specs = []
    for source in sorted({i["config"].get("source") for i in infos if i["config"].get("source")}):
        names = {i["name"] for i in infos if i["config"].get("source") == source}
        env_name = next(i["config"].get("env_name") for i in infos if i["config"].get("source") == source)
        specs += [s for s in load_config(source, env_name, None) if s["name"] in names]
    return {"apps": specs, "base_env": base_env(specs)}


# -- PM2's startOrRestart / startOrReload (and restart/reload of a file) ------------------------
def cmd_start_or_restart(args: argparse.Namespace) -> int:
    return start_or(args, "restart")


def cmd_start_or_reload(args: argparse.Namespace) -> int:
    return start_or(args, "reload")


def start_or(args: argparse.Namespace, op: str) -> int:
    """Start the apps of a file that the daemon does not know; restart (or reload) the others
    with the file's settings, as PM2's ``startOrRestart`` / ``startOrReload`` do."""
    path = args.file
    if not is_config_file(path):
        raise UsageError(f"{path}: not an ecosystem file (corral.toml, ecosystem.config.js, app.json ...)")
    specs = load_config(path, getattr(args, "env", None), getattr(args, "only", None), settings_of(args))
    env = base_env(specs)
    client = Client(autostart=True)
    known = {row["name"] for row in client.call("ls")}
    rows: list[dict[str, Any]] = []
    status = 0
    new = [s for s in specs if s["name"] not in known]
    if new:
        result = client.call("start", {"apps": new, "base_env": env})
        for line in result.get("notes", []) + result.get("errors", []):
            warn(line)
        status = 1 if result.get("errors") else 0
        rows += result["rows"]
    for spec in (s for s in specs if s["name"] in known):
        request: dict[str, Any] = {"target": spec["name"], "apps": [spec], "base_env": env}
        if op == "reload":
            request["parallel"] = getattr(args, "parallel", 1) or 1
        result = client.call(op, request)
        if op == "reload" and not args.json:
            for line in result["replaced"]:
                print(f"reloaded {line}")
        rows += result["rows"]
    show_rows(rows, args.json)
    return 1 if status or any(r["status"] == "errored" for r in rows) else 0
