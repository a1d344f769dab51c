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


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    for stream in (sys.stdout, sys.stderr):  # a name typed in bytes that are not UTF-8 is shown escaped
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
    before, after = _split_dashdash(argv)
    try:
        _check_verb(before)
        args = build_parser().parse_args(before)
        args.extra, args.dashdash = after, len(before) < len(argv)
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


def _check_verb(argv: list[str]) -> None:
    """``corral strat``: one line naming the closest verb, exit 2 (argparse would list them all)."""
    if not argv or argv[0].startswith("-") or argv[0] in COMMANDS:
        return
    import difflib

    close = difflib.get_close_matches(argv[0], list(COMMANDS), n=1, cutoff=0.7)
    hint = f'did you mean "{close[0]}"?' if close else "see `corral --help`"
    raise UsageError(f'unknown command "{argv[0]}" ({hint})')


def warn(text: str) -> None:
    print(f"corral: {_clean(text)}", file=sys.stderr)


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
def cmd_ls(args: argparse.Namespace) -> int:
    try:
        rows = Client().call("ls")
    except DaemonUnavailable as exc:
        print(f"corral: {exc} (`corral start` or `corral resurrect` starts one)", file=sys.stderr)
        rows = []
    show_rows(rows, args.json)
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
    store = result.get("store") or {}
    if not store.get("ok", True) or store.get("events_dropped") or store.get("moved_aside"):
        from corral.cli import render

        for line in render.store_lines(store):
            print(f"corral: {line}", file=sys.stderr)
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from corral.config.load import validate_file

    warnings: list[str] = []
    errors = validate_file(args.file, check_files=True, warnings=warnings)
    deploy_errors, current = _deploy_errors(args.file)
    if current:  # before the first deploy, the apps' cwd (<path>/current) is not there yet
        waiting = [e for e in errors if f'cwd: "{current}' in e and e.endswith("does not exist")]
        warnings += [f"{e} yet (`corral deploy` makes it)" for e in waiting]
        errors = [e for e in errors if e not in waiting]
    if not errors:
        errors = deploy_errors
    for line in warnings:
        print(f"corral: warning: {line}", file=sys.stderr)
    for message in errors:
        print(f"corral: {message}", file=sys.stderr)
    if errors:
        return 2
    print(f"{args.file}: ok")
    return 0


def _deploy_errors(path: str) -> tuple[list[str], str]:
    """The file's deploy table (``corral deploy`` reads it), each environment of PM2's form: the
    problems, and where ``current`` will be (the first valid environment's)."""
    import os.path

    from corral.config.errors import ConfigError
    from corral.config.load import read_document

    try:
        doc = read_document(path)
    except ConfigError:
        return [], ""
    raw = doc.get("deploy") if isinstance(doc, dict) else None
    if raw is None:
        return [], ""
    from corral.deploy.config import REMOTE, DeployConfigError, environments, parse

    errors, current = [], ""
    names: list[str | None] = list(environments(raw)) or [None]
    for env in names:
        try:
            config = parse(raw, path, env)
        except DeployConfigError as exc:
            if REMOTE not in str(exc):  # a remote deploy is valid: `corral export ansible` does it
                errors.append(str(exc))
            continue
        root = os.path.join(os.path.dirname(os.path.abspath(path)), config.path)  # absolute stays absolute
        current = current or os.path.join(os.path.normpath(root), "current")
    return errors, current


def cmd_run(args: argparse.Namespace) -> int:
    """Check the file here (clear errors, warnings), then become the foreground supervisor.

    The specs travel in a memfd; exec keeps our pid, so ``corral run`` as PID 1 stays PID 1.
    """
    from corral.cli.start import load_config, settings_of

    specs = load_config(args.file, args.env, args.only, settings_of(args))
    fd = os.memfd_create("corral-run-specs", 0)
    os.write(fd, json.dumps(specs).encode())
    os.lseek(fd, 0, os.SEEK_SET)
    os.set_inheritable(fd, True)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-m", "corral.daemon.foreground", str(fd)])


def _lazy(module: str, name: str, *extra: str) -> Any:
    """A command of ``corral.cli.<module>``, imported only when it runs."""

    def run(args: argparse.Namespace) -> int:
        import importlib

        found = getattr(importlib.import_module(f"corral.cli.{module}"), name)
        return int((found(*extra) if extra else found)(args))

    return run


COMMANDS = {
    "start": _lazy("start", "cmd_start"),
    "startOrRestart": _lazy("start", "cmd_start_or_restart"),
    "startOrReload": _lazy("start", "cmd_start_or_reload"),
    "startOrGracefulReload": _lazy("start", "cmd_start_or_reload"),
    "ls": cmd_ls, "list": cmd_ls, "status": cmd_ls, "ps": cmd_ls, "l": cmd_ls,
    "jlist": _lazy("verbs", "cmd_jlist"), "prettylist": _lazy("verbs", "cmd_prettylist"),
    "stop": _lazy("verbs", "command", "stop"), "restart": _lazy("verbs", "command", "restart"),
    "delete": _lazy("verbs", "command", "delete"), "del": _lazy("verbs", "command", "delete"),
    "reload": _lazy("verbs", "command", "reload"), "reset": _lazy("verbs", "command", "reset"),
    "scale": cmd_scale, "describe": cmd_describe, "desc": cmd_describe, "show": cmd_describe, "info": cmd_describe,
    "env": _lazy("verbs", "cmd_env"),
    "signal": cmd_signal, "sendSignal": cmd_signal, "events": cmd_events,
    "save": cmd_save, "dump": cmd_save, "resurrect": _lazy("verbs", "cmd_resurrect"), "kill": cmd_kill,
    "ping": cmd_ping, "validate": cmd_validate, "run": cmd_run, "metrics": _lazy("metrics", "cmd_metrics"),
    "alerts": _lazy("alerts", "cmd_alerts"), "jobs": _lazy("jobs", "cmd_jobs"), "web": _lazy("web", "cmd_web"),
    "profile": _lazy("profile", "cmd_profile"),
    "deploy": _lazy("deploy", "cmd_deploy"), "rollback": _lazy("releases", "cmd_rollback"),
    "releases": _lazy("releases", "cmd_releases"),
    "startup": _lazy("boot", "cmd_startup"), "unstartup": _lazy("boot", "cmd_unstartup"),
    "export": _lazy("export", "cmd_export"),
    "monit": _lazy("tui", "cmd_monit"), "dash": _lazy("tui", "cmd_monit"),
    "logs": _lazy("logs", "cmd_logs"), "log": _lazy("logs", "cmd_logs"), "flush": _lazy("logs", "cmd_flush"),
}
