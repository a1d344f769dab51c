"""``corral startup [systemd|systemd-user]`` and ``corral unstartup``: start at boot.

``startup`` writes a unit that runs this corral's daemon (``corral.export.systemd.corral_unit``)
and enables it with ``systemctl`` when systemd runs here; where it does not (a container whose
PID 1 is not systemd), it says so in one line and prints the exact commands to run.  The daemon
it starts resurrects the saved list (``corral save``).  ``unstartup`` disables and removes it.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import shutil
import subprocess
import sys
from typing import Any

from corral.cli.main import warn
from corral.cli.parser import UsageError
from corral.paths import Home

KINDS = ("systemd", "systemd-user")
DEFAULT_STOP = 90.0  # TimeoutStopSec when no app is known yet (systemd's own default)


def _kind(args: argparse.Namespace) -> str:
    kind = args.kind or ("systemd" if os.geteuid() == 0 else "systemd-user")
    if kind not in KINDS:
        raise UsageError(f"startup {kind}: corral writes systemd units only (systemd or systemd-user)")
    return kind


def _user() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())


def _account(args: argparse.Namespace, kind: str) -> tuple[str, Home]:
    """Whose daemon the unit runs, and its home: ``--user NAME`` (root writing a unit for another
    user, as PM2's ``startup -u``: their ``~/.corral`` unless CORRAL_HOME says), else ours."""
    name = getattr(args, "user", None)
    if not name:
        return _user(), Home.from_env()
    if kind != "systemd":
        raise UsageError("--user is for a system unit (`corral startup systemd --user NAME`); "
                         "a user unit is the user's own")
    try:
        account = pwd.getpwnam(name)
    except KeyError:
        raise UsageError(f"--user {name}: no such user") from None
    return name, Home(os.path.abspath(os.environ.get("CORRAL_HOME") or os.path.join(account.pw_dir, ".corral")))


def unit_path(kind: str, unit_dir: str | None, user: str | None = None) -> str:
    if kind == "systemd":
        return os.path.join(unit_dir or "/etc/systemd/system", f"corral-{user or _user()}.service")
    config = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(unit_dir or os.path.join(config, "systemd", "user"), "corral.service")


def systemd_runs(kind: str) -> bool:
    """systemd is the init system here (``sd_booted``), and for a user unit the user's manager answers."""
    if shutil.which("systemctl") is None or not os.path.isdir("/run/systemd/system"):
        return False
    if kind == "systemd":
        return True
    found = subprocess.run(["systemctl", "--user", "show-environment"], capture_output=True, timeout=10)
    return found.returncode == 0


def _systemctl(kind: str) -> list[str]:
    return ["systemctl"] if kind == "systemd" else ["systemctl", "--user"]


def cmd_startup(args: argparse.Namespace) -> int:
    from corral.export.systemd import CorralUnit, corral_unit

    kind = _kind(args)
    user, home = _account(args, kind)
    apps = known_apps(home)
    unit = CorralUnit(python=os.path.abspath(sys.executable), home=os.path.abspath(home.root),
                      user=None if user == "root" else user, system=kind == "systemd",
                      stop_timeout=stop_timeout(apps))
    text = corral_unit(unit)
    if args.print:
        sys.stdout.write(text)
        return 0
    path = unit_path(kind, args.unit_dir, user)
    try:
        _write(path, text)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}"
                         + (" (a system unit needs root: `sudo corral startup`, or `corral startup systemd-user`)"
                            if kind == "systemd" and os.geteuid() != 0 else "")) from None
    name = os.path.basename(path)
    print(f"wrote {path} (TimeoutStopSec {unit.stop_timeout:g}s from the apps' kill_timeouts)")
    commands = [[*_systemctl(kind), "daemon-reload"], [*_systemctl(kind), "enable", name]]
    if kind == "systemd-user":
        commands.append(["loginctl", "enable-linger", user])  # the user's manager runs without a login
    status = _apply(kind, commands, args.unit_dir)
    if not os.path.exists(home.dump):
        warn(f"note: nothing saved yet: `corral save` chooses the apps the unit starts at boot ({home.dump})")
    print(f"the daemon running now is not under systemd: `corral save && corral kill && "
          f"{' '.join(_systemctl(kind))} start {name}` moves it there")
    return status


def cmd_unstartup(args: argparse.Namespace) -> int:
    kind = _kind(args)
    user, _ = _account(args, kind)
    path = unit_path(kind, args.unit_dir, user)
    name = os.path.basename(path)
    if not os.path.exists(path):
        print(f"no unit at {path}: nothing to remove")
        return 0
    disable, reload = [*_systemctl(kind), "disable", name], [*_systemctl(kind), "daemon-reload"]
    live = args.unit_dir is None and systemd_runs(kind)
    status = _apply(kind, [disable], None) if live else 0  # disable needs the file: before removing it
    links = [] if live else _links(path, kind)  # what `systemctl enable` made, where systemd cannot undo it
    try:
        for link in links:
            os.unlink(link)
        os.unlink(path)
    except OSError as exc:
        raise UsageError(f"cannot remove {path}: {exc.strerror or exc}") from None
    print(f"removed {path}" + "".join(f" and {link}" for link in links))
    return _apply(kind, [reload], args.unit_dir) or status


def _links(path: str, kind: str) -> list[str]:
    """The ``WantedBy=`` links to PATH beside it (``systemctl enable`` run where systemd was not PID 1)."""
    target = "multi-user.target" if kind == "systemd" else "default.target"
    link = os.path.join(os.path.dirname(path), f"{target}.wants", os.path.basename(path))
    try:
        return [link] if os.path.realpath(link) == os.path.realpath(path) and os.path.islink(link) else []
    except OSError:
        return []


def _apply(kind: str, commands: list[list[str]], unit_dir: str | None) -> int:
    """Run COMMANDS where systemd runs (and the unit is in its folder); else print them."""
    import shlex

    runs = systemd_runs(kind)
    if unit_dir is not None or not runs:
        why = "systemd is not running here (not PID 1)" if not runs else "the unit is not in systemd's folder"
        print(f"{why}: run these where it is:")
        for command in commands:
            print("  " + shlex.join(command))
        return 0
    for command in commands:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            warn(f"corral: {shlex.join(command)} failed: {last}")
            return 1
        print(f"ran {shlex.join(command)}")
    return 0


def _write(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
        os.fchmod(f.fileno(), 0o644)
    os.replace(tmp, path)


def known_apps(home: Home) -> list[dict[str, Any]]:
    """The apps' specs: the running daemon's, else the saved list's (what boot restores)."""
    from corral.control.client import Client, DaemonUnavailable

    try:
        return [info["config"] for info in Client(home).call("describe", {"target": "all"})]
    except DaemonUnavailable:
        pass
    except Exception:  # a daemon that cannot answer: the saved list still tells
        pass
    try:
        with open(home.dump, "rb") as f:
            dump = json.loads(f.read(64 * 1024 * 1024))
        return [entry["spec"] for entry in dump["apps"] if isinstance(entry.get("spec"), dict)]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return []


def stop_timeout(apps: list[dict[str, Any]]) -> float:
    """TimeoutStopSec: the graceful stop of these apps (dependents first; ``lifecycle.order``)."""
    from corral.lifecycle.order import stop_budget

    found = []
    for spec in apps:
        timeout, depends = spec.get("kill_timeout", 5.0), spec.get("depends_on") or []
        if isinstance(spec.get("name"), str) and isinstance(timeout, (int, float)) and isinstance(depends, list):
            found.append((spec["name"], float(timeout), [d for d in depends if isinstance(d, str)]))
    return stop_budget(found) if found else DEFAULT_STOP
