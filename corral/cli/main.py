"""The ``corral`` command: talk to the daemon, print (the grammar is in ``cli.parser``).

Only the standard library and corral's small client modules load here; config
loading and the foreground runner load when a command needs them (``ls`` and
``ping`` take an even faster path, ``cli.fast``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs start-up time on the CLI's fast path
    from typing import Any

from corral.control import protocol
from corral.cli.parser import UsageError, build_parser
from corral.control.client import Client, DaemonUnavailable
from corral.exceptions import OperationFailed, UserMistake

CONFIG_SUFFIXES = (".toml", ".yaml", ".yml", ".json", ".js", ".cjs", ".mjs")




def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    for stream in (sys.stdout, sys.stderr):  # a name typed in bytes that are not UTF-8 is shown escaped
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
    before, after = _split_dashdash(argv)
    try:
        args = build_parser().parse_args(before)
        args.extra = after
        if after and args.command != "start":
            raise UsageError("arguments after `--` are only for `corral start`")
        return COMMANDS[args.command](args)
    except UserMistake as exc:  # UsageError, ConfigError...
        return fail(str(exc), 2)
    except protocol.RemoteError as exc:
        return fail(exc.message, 2 if exc.code in (protocol.USER, protocol.BAD_REQUEST) else 1)
    except OperationFailed as exc:  # DaemonUnavailable...
        return fail(str(exc), 1)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except OSError as exc:  # a file or socket the system refused: one line, never a traceback
        return fail(_os_error(exc), 1)


def _os_error(exc: OSError) -> str:
    where = f"{exc.filename}: " if exc.filename else ""
    return f"{where}{exc.strerror or exc}"


def _split_dashdash(argv: list[str]) -> tuple[list[str], list[str]]:
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1 :]
    return argv, []


def fail(message: str, status: int) -> int:
    print(f"corral: {_clean(message)}", file=sys.stderr)
    return status


def _clean(text: str) -> str:
    """Control characters escaped (``render.clean``), loaded only when there are some."""
    if text.isprintable():
        return text
    from corral.cli.render import clean

    return clean(text)


def emit_json(data: Any) -> None:
    print(json.dumps(data, indent=2))


def show_rows(rows: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        emit_json(rows)
        return
    from corral.cli import render

    print(render.table(rows))


# -- commands -------------------------------------------------------------------------------
def cmd_start(args: argparse.Namespace) -> int:
    request: dict[str, Any] = {}
    target = args.target
    settings = _settings(args)
    if target is None and not args.extra:
        raise UsageError("start what? `corral start app.py`, `corral start corral.toml` or `corral start -- CMD`")
    if target is not None and _is_config_file(target):
        request["apps"] = _load_config(target, args.env, args.only, settings)
    elif args.extra or (target is not None and (os.path.exists(target) or _looks_like_path(target))):
        if target is not None and not os.path.exists(target):
            raise UsageError(f"{target}: no such file")
        if args.env or args.only:
            raise UsageError(f"--{'env' if args.env else 'only'} is for an ecosystem file (corral.toml ...)")
        script = target if target is None or settings.get("shell") else os.path.abspath(target)  # even with --cwd
        request["apps"] = [_command_line_spec(script, args, settings)]
    elif settings:
        from corral.config.flags import flag_of

        raise UsageError(f"{flag_of(next(iter(settings)))}: settings are for a script, a command or a file; "
                         f"`corral start {target}` starts the app as it is (change its file, then start the file)")
    else:
        request["target"] = target
    if "apps" in request:
        request["base_env"] = _base_env(request["apps"])
    result = Client(autostart=True).call("start", request)
    for note in result.get("notes", []):
        print(f"corral: {_clean(note)}", file=sys.stderr)
    for error in result.get("errors", []):
        print(f"corral: {_clean(error)}", file=sys.stderr)
    show_rows(result["rows"], args.json)
    return 1 if any(r["status"] == "errored" for r in result["rows"]) else 0


def _is_config_file(target: str) -> bool:
    base = os.path.basename(target)
    return base.endswith(CONFIG_SUFFIXES[:4]) or base.startswith("ecosystem") or base.endswith(".config.js")


def _looks_like_path(target: str) -> bool:
    return "/" in target or os.path.splitext(target)[1] in (".py", ".js", ".mjs", ".cjs", ".sh", ".ts")


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given as flags (``-i 4``, ``--kill-timeout 3s`` ...), raw, by key."""
    from corral.config.flags import settings_from_flags

    return settings_from_flags(args, os.getcwd())


def _load_config(path: str, env_name: str | None, only: str | None,
                 settings: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The apps of a file that will start: every value checked, and what they name on this machine."""
    from corral.config.errors import ConfigError
    from corral.config.load import ignored_warnings, load_file

    warnings: list[str] = []
    try:
        specs = load_file(path, env_name=env_name, only=only, overrides=settings, check_files=True,
                          warnings=warnings)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    for line in warnings + ignored_warnings(path, specs):
        print(f"corral: warning: {line}", file=sys.stderr)
    return specs


def _command_line_spec(target: str | None, args: argparse.Namespace, settings: dict[str, Any]) -> dict[str, Any]:
    from corral.config.errors import ConfigError
    from corral.config.load import from_command_line

    try:
        return from_command_line(target, list(args.extra), cwd=os.getcwd(), extra=settings, check_files=True)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None


def cmd_ls(args: argparse.Namespace) -> int:
    try:
        rows = Client().call("ls")
    except DaemonUnavailable as exc:
        print(f"corral: {exc} (`corral start` or `corral resurrect` starts one)", file=sys.stderr)
        rows = []
    show_rows(rows, args.json)
    return 0


def _simple(op: str) -> Any:
    def run(args: argparse.Namespace) -> int:
        result = Client().call(op, {"target": args.target})
        if op == "delete":
            if args.json:
                emit_json(result)
            else:
                print(f"deleted: {', '.join(result['deleted']) or 'nothing'}")
            return 0
        show_rows(result["rows"], args.json)
        return 0

    return run


def cmd_restart(args: argparse.Namespace) -> int:
    request: dict[str, Any] = {"target": args.target}
    if args.update_env:
        request.update(_reload_specs(args.target))
    result = Client().call("restart", request)
    show_rows(result["rows"], args.json)
    return 1 if any(r["status"] == "errored" for r in result["rows"]) else 0


def _reload_specs(target: str) -> dict[str, Any]:
    """For --update-env: the apps' specs read again from their files, and this shell's environment."""
    client = Client()
    infos = client.call("describe", {"target": target})
    specs = []
    for source in sorted({i["config"].get("source") for i in infos if i["config"].get("source")}):
        names = {i["name"] for i in infos if i["config"].get("source") == source}
        env_name = next(i["config"].get("env_name") for i in infos if i["config"].get("source") == source)
        specs += [s for s in _load_config(source, env_name, None) if s["name"] in names]
    return {"apps": specs, "base_env": _base_env(specs)}


def _base_env(specs: list[dict[str, Any]]) -> dict[str, str]:
    """This shell's environment as the apps may keep it: no secrets unless an app's
    ``env_inherit`` asks for them (the daemon filters again, per app); says what it keeps back."""
    from corral.config.environ import inherited, withheld

    patterns = {p for spec in specs for p in spec.get("env_inherit") or ()}
    kept_back = withheld(os.environ, patterns)
    if kept_back:
        print(f"corral: not passed on from this shell (secrets; list them in env_inherit to pass them): "
              f"{', '.join(kept_back)}", file=sys.stderr)
    return inherited(os.environ, patterns)


def cmd_reload(args: argparse.Namespace) -> int:
    request: dict[str, Any] = {"target": args.target, "parallel": args.parallel}
    if args.update_env:
        request.update(_reload_specs(args.target))
    result = Client().call("reload", request)
    if not args.json:
        for line in result["replaced"]:
            print(f"reloaded {line}")
    show_rows(result["rows"], args.json)
    return 0


def cmd_scale(args: argparse.Namespace) -> int:
    result = Client().call("scale", {"target": args.target, "count": args.count})
    show_rows(result["rows"], args.json)
    return 1 if any(r["status"] == "errored" for r in result["rows"]) else 0


def cmd_describe(args: argparse.Namespace) -> int:
    infos = Client().call("describe", {"target": args.target})
    if args.json:
        emit_json(infos if len(infos) != 1 else infos[0])
        return 0
    from corral.cli import render

    print("\n\n".join(render.describe(info) for info in infos))
    return 0


def cmd_signal(args: argparse.Namespace) -> int:
    result = Client().call("signal", {"target": args.target, "signal": args.signal})
    print(f"sent {result['signal']} to {result['instances']} instance(s)")
    return 0


def cmd_events(args: argparse.Namespace) -> int:
    if args.follow:
        return _follow_events(args)
    events = Client().call("events", {"target": args.target, "limit": args.lines})
    if args.json:
        emit_json(events)
        return 0
    from corral.cli import render

    for ev in events:
        print(render.event_line(ev))
    return 0


def _follow_events(args: argparse.Namespace) -> int:
    """The last ``--lines`` events, then each new one as it happens (``subscribe``), until Ctrl-C."""
    from corral.cli import render

    def show(message: Any) -> None:
        if "dropped" in message:
            print(f"corral: {message['dropped']} event(s) lost so far: this output is read too slowly",
                  file=sys.stderr, flush=True)
        elif "event" in message:
            ev = message["event"]
            print(json.dumps(ev) if args.json else render.event_line(ev), flush=True)

    request = {"target": args.target, "history": max(0, args.lines), "all": args.all}
    Client().call("subscribe", request, on_progress=show)  # returns only with an error, or raises
    return 0


def cmd_save(args: argparse.Namespace) -> int:
    result = Client().call("save")
    print(f"saved {len(result['apps'])} app(s) to {result['path']}")
    return 0


def cmd_resurrect(args: argparse.Namespace) -> int:
    result = Client(autostart=True).call("resurrect")
    for line in result.get("skipped", []):
        print(f"corral: {line}", file=sys.stderr)
    show_rows(result["rows"], False)
    return 1 if result.get("skipped") else 0


def cmd_kill(args: argparse.Namespace) -> int:
    client = Client(autostart=False)
    try:
        result = client.call("kill")
    except DaemonUnavailable:
        print("corral: no daemon was running")
        return 0
    _wait_closed(client)
    _wait_exited(result["pid"])
    print(f"stopped {len(result['stopped'])} app(s); the daemon has exited")
    return 0


def _wait_closed(client: Client) -> None:
    """The daemon closes our connection once it is shutting down."""
    try:
        client._read_line()
    except (DaemonUnavailable, OSError):
        pass
    client.close()


def _wait_exited(pid: int, timeout: float = 30.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return
        except (FileNotFoundError, ProcessLookupError):
            return
        time.sleep(0.01)


def cmd_ping(args: argparse.Namespace) -> int:
    result = Client(autostart=True).call("ping")
    if args.json:
        emit_json(result)
        return 0
    print(f"pong: daemon pid {result['pid']}, corral {result['version']}, {result['apps']} app(s)")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from corral.config.load import validate_file

    warnings: list[str] = []
    errors = validate_file(args.file, check_files=True, warnings=warnings)
    for line in warnings:
        print(f"corral: warning: {line}", file=sys.stderr)
    for message in errors:
        print(f"corral: {message}", file=sys.stderr)
    if errors:
        return 2
    print(f"{args.file}: ok")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """Check the file here (clear errors, warnings), then become the foreground supervisor.

    The specs travel in a memfd; exec keeps our pid, so ``corral run`` as PID 1 stays PID 1.
    """
    specs = _load_config(args.file, args.env, args.only, _settings(args))
    fd = os.memfd_create("corral-run-specs", 0)
    os.write(fd, json.dumps(specs).encode())
    os.lseek(fd, 0, os.SEEK_SET)
    os.set_inheritable(fd, True)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-m", "corral.daemon.foreground", str(fd)])


def _logs_command(name: str) -> Any:
    """A command of ``corral.cli.logs``, imported only when it runs."""

    def run(args: argparse.Namespace) -> int:
        from corral.cli import logs

        return int(getattr(logs, name)(args))

    return run


COMMANDS = {
    "start": cmd_start, "ls": cmd_ls, "list": cmd_ls, "status": cmd_ls,
    "stop": _simple("stop"), "delete": _simple("delete"), "del": _simple("delete"),
    "restart": cmd_restart, "reload": cmd_reload, "scale": cmd_scale, "describe": cmd_describe, "show": cmd_describe, "info": cmd_describe,
    "signal": cmd_signal, "sendSignal": cmd_signal, "events": cmd_events,
    "save": cmd_save, "dump": cmd_save, "resurrect": cmd_resurrect, "kill": cmd_kill,
    "ping": cmd_ping, "validate": cmd_validate, "run": cmd_run,
    "logs": _logs_command("cmd_logs"), "log": _logs_command("cmd_logs"), "flush": _logs_command("cmd_flush"),
}
