"""The command line's grammar: every command, its arguments and its help, for argparse."""

from __future__ import annotations

import argparse
from typing import Any, NoReturn

from corral.config.flags import add_setting_flags
from corral.exceptions import UserMistake


class UsageError(UserMistake):
    """A mistake on the command line: exit status 2, one line on stderr."""


class Parser(argparse.ArgumentParser):
    """argparse, but a mistake raises UsageError (one line, exit 2) instead of printing usage."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `corral --help`)")


def build_parser() -> Parser:
    parser = Parser(prog="corral", description="Run any program and keep it running.")
    from corral import __version__

    parser.add_argument("--version", "-v", action="version", version=f"corral {__version__}")
    parser.add_argument("--remote", metavar="URL", help="drive another host's daemon through its HTTP API "
                        "(https://host:9616; or CORRAL_REMOTE); goes before the command")
    parser.add_argument("--token-file", metavar="F", help="with --remote: the file holding the token (or CORRAL_TOKEN)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True

    _lifecycle(sub)
    _cluster(sub)
    _inspection(sub)
    _files(sub)
    _deploy(sub)
    _boot(sub)
    _web(sub)
    return parser


TARGETS = "app names, ids, namespaces, all, or an ecosystem file"


def _lifecycle(sub: Any) -> None:
    p = sub.add_parser("start", help="start a script, a command or an ecosystem file; or start stopped apps")
    p.add_argument("target", nargs="?",
                   help="app.py, corral.toml, ecosystem.config.js, a program on PATH (with --), or an app name/id/namespace/all")
    _file_options(p)
    for name, text in (("startOrRestart", "start the apps of a file, restart those already here (PM2)"),
                       ("startOrReload", "start the apps of a file, reload those already here (PM2)")):
        p = sub.add_parser(name, aliases=["startOrGracefulReload"] if name == "startOrReload" else [], help=text)
        p.add_argument("file", help="an ecosystem file")
        _file_options(p)
        if name == "startOrReload":
            p.add_argument("--parallel", type=int, default=1, help="instances replaced at a time (default 1)")

    p = sub.add_parser("ls", aliases=["list", "status", "ps", "l"], help="list every instance")
    p.add_argument("--json", action="store_true", help="print a JSON array, one object per instance")
    sub.add_parser("jlist", help="the list as JSON on one line (PM2; same as ls --json)")
    sub.add_parser("prettylist", help="the list as indented JSON (PM2)")

    for name, text in (("stop", "stop apps gracefully"), ("restart", "restart apps (a file: start its new apps too)"),
                       ("delete", "stop and forget apps"), ("reset", "set apps' restart counters to 0")):
        p = sub.add_parser(name, aliases=["del"] if name == "delete" else [], help=text)
        p.add_argument("targets", nargs="+", metavar="target", help=TARGETS)
        p.add_argument("--json", action="store_true", help="print JSON")
        if name == "restart":
            _update_env(p)


def _file_options(p: Any) -> None:
    p.add_argument("--only", help="with a file: start only these apps (comma-separated)")
    p.add_argument("--env", help="with a file: use env_<ENV> on top of env")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_setting_flags(p.add_argument_group("settings (as in a file; with a file, they override it)"))


def _update_env(p: Any) -> None:
    p.add_argument("-a", "--update-env", action="store_true",
                   help="re-read the app's ecosystem file and take this shell's environment")


def _cluster(sub: Any) -> None:
    p = sub.add_parser("reload", help="zero-downtime rolling reload: start new, wait ready, stop old")
    p.add_argument("targets", nargs="+", metavar="target", help=TARGETS)
    p.add_argument("--parallel", type=int, default=1, help="instances replaced at a time (default 1)")
    _update_env(p)
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("scale", help="set the number of instances: N, +N or -N")
    p.add_argument("target")
    p.add_argument("count", help="4, +2 or -1")
    p.add_argument("--json", action="store_true")


def _inspection(sub: Any) -> None:
    p = sub.add_parser("describe", aliases=["desc", "show", "info"], help="everything about one app")
    p.add_argument("target")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("env", help="the environment of an app's instances, secrets masked (PM2: env ID)")
    p.add_argument("target", help="an app name, an id, a namespace, or all")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("signal", aliases=["sendSignal"], help="send a signal to every process of an app")
    p.add_argument("signal", help="e.g. SIGUSR1, HUP")
    p.add_argument("target")

    p = sub.add_parser("events", help="lifecycle events (starts, exits, crash loops...)")
    p.add_argument("target", nargs="?", default="all")
    p.add_argument("--lines", type=int, default=50)
    p.add_argument("--json", action="store_true", help="JSON (with --follow: one object per line)")
    p.add_argument("--follow", "-f", action="store_true", help="then print new events as they happen, until Ctrl-C")
    p.add_argument("--all", action="store_true",
                   help="with --follow: also live events the history does not keep (state changes, probe results)")

    p = sub.add_parser("metrics", help="CPU, memory, threads and fds of apps and the host, with their history")
    p.add_argument("target", nargs="?", default=None, help="an app name, an id, a namespace (default: all)")
    p.add_argument("--since", default="1h", help="history from this long ago (default 1h)")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("alerts", help="recent alerts and their delivery; `alerts test` tries every sink")
    p.add_argument("action", nargs="?", choices=["test"], help="test: send a test alert through every sink")
    p.add_argument("--lines", type=int, default=50, help="how many alerts (default 50)")
    p.add_argument("--json", action="store_true")

    sub.add_parser("monit", aliases=["dash"],
                   help="live terminal dashboard: apps, CPU/memory history, logs with search, timeline, actions")
    p = sub.add_parser("jobs", help="jobs: schedule, next run, last result; run, history, pause, resume NAME")
    p.add_argument("action", nargs="?", choices=["run", "history", "pause", "resume"],
                   help="run NAME now (output streamed, exit status passed through), its history, pause, resume")
    p.add_argument("name", nargs="?", help="the job")
    p.add_argument("--lines", type=int, default=20, help="history: how many runs (default 20)")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("profile", help="a CPU profile, every thread's stack or a heap snapshot of a running app")
    p.add_argument("what", choices=["cpu", "stack", "heap"])
    p.add_argument("target", help="an app name or id")
    p.add_argument("--instance", type=int, default=None, help="the instance (default: the first running)")
    p.add_argument("--duration", default="30s", help="cpu: how long to sample (default 30s)")
    p.add_argument("--format", choices=["speedscope", "svg", "cpuprofile"], default=None,
                   help="cpu: only this file (Python: speedscope and svg by default; Node: cpuprofile)")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("logs", aliases=["log"], help="show (and follow) apps' logs")
    p.add_argument("target", nargs="?", default="all", help="an app name, an id, a namespace, or all")
    p.add_argument("--lines", type=int, default=15, help="last lines of each file (default 15)")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing new lines (across rotations)")
    p.add_argument("--out", action="store_true", help="stdout only")
    p.add_argument("--err", action="store_true", help="stderr only")
    p.add_argument("--grep", metavar="REGEX", help="only lines matching REGEX")
    p.add_argument("--since", metavar="T", help="only lines newer than T: 10m, 2h, 1d or a date")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--raw", action="store_true", help="the lines only, without the app label")

    p = sub.add_parser("flush", help="empty apps' log files (and delete rotated ones)")
    p.add_argument("target", nargs="?", default="all")



def _web(sub: Any) -> None:
    p = sub.add_parser("web", help="serve the HTTP API and dashboard (the app corral-web); `web token` prints a token")
    p.add_argument("action", nargs="?", choices=["token"], help="token: print the full token (or --read-only's)")
    p.add_argument("--listen", default="127.0.0.1:9616", help="HOST:PORT (default 127.0.0.1:9616, loopback)")
    p.add_argument("--cert", help="TLS certificate chain (PEM): needed off loopback, with --key")
    p.add_argument("--key", help="TLS private key (PEM)")
    p.add_argument("--insecure", action="store_true", help="allow plain HTTP off loopback (tokens in the clear)")
    p.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="a name the Host header may carry (the listen address and loopback always may)")
    p.add_argument("--rotate", action="store_true", help="with token: make a new one (old sessions end)")
    p.add_argument("--read-only", action="store_true", help="with token: the read-only token")


def _files(sub: Any) -> None:
    sub.add_parser("save", aliases=["dump"], help="remember the current app list for resurrect")
    sub.add_parser("resurrect", help="start the apps remembered by save")
    sub.add_parser("kill", help="stop every app gracefully, then the daemon")
    p = sub.add_parser("ping", help="start the daemon if needed and say it answers")
    p.add_argument("--json", action="store_true", help="the daemon's answer as JSON (pid, version, apps, bus)")

    p = sub.add_parser("validate", help="check an ecosystem file without starting anything")
    p.add_argument("file")

    p = sub.add_parser("run", help="run an ecosystem in the foreground, without a daemon (containers)")
    p.add_argument("file")
    p.add_argument("--only")
    p.add_argument("--env")
    add_setting_flags(p.add_argument_group("settings (override the file's, for every app)"))


def duration_arg(text: str) -> float:
    """A duration on the command line: ``5m``, ``90s``; a bare number is seconds."""
    from corral.units import parse_duration

    try:
        seconds = float(text) if text.replace(".", "", 1).isdigit() else parse_duration(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration (90s, 5m)") from None
    if not 0 < seconds <= 86400:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration above 0 and up to 24h")
    return seconds


def _deploy(sub: Any) -> None:
    where = "the ecosystem file (default: corral.toml, ecosystem.config.js ... here)"
    p = sub.add_parser("deploy", help="fetch a release, build it, switch current and roll the apps; "
                                      "roll back by itself if it fails")
    p.add_argument("targets", nargs="*", metavar="target",
                   help="an app, all, a PM2 deploy environment (production), or the ecosystem file")
    p.add_argument("--file", help=where)
    p.add_argument("--env", help="use env_<ENV> of the apps")
    p.add_argument("--canary", type=int, default=0, metavar="N",
                   help="replace N instances first, watch them for --bake, then the others")
    p.add_argument("--bake", type=duration_arg, metavar="T",
                   help="how long the new release is watched after the switch (default: deploy.bake, 60s)")
    p.add_argument("--json", action="store_true", help="no progress lines: one JSON object at the end")
    for name, text in (("rollback", "switch current to the previous release and roll the apps to it"),
                       ("releases", "list the releases; which is live and which a rollback goes to")):
        p = sub.add_parser(name, help=text)
        p.add_argument("targets", nargs="*", metavar="target", help="an app, a PM2 deploy environment, or the file")
        p.add_argument("--file", help=where)
        p.add_argument("--env", help="use env_<ENV> of the apps")
        if name == "releases":
            p.add_argument("--json", action="store_true")


def _boot(sub: Any) -> None:
    for name, text in (("startup", "write and enable a systemd unit that starts corral (and the saved apps) at boot"),
                       ("unstartup", "disable and remove the unit of `corral startup`")):
        p = sub.add_parser(name, help=text)
        p.add_argument("kind", nargs="?", choices=["systemd", "systemd-user"],
                       help="a system unit (root's default) or a user unit (systemctl --user; others' default)")
        p.add_argument("--unit-dir", metavar="DIR", help="write the unit there instead of systemd's folder")
        p.add_argument("-u", "--user", metavar="NAME",
                       help="a system unit for this user's daemon (their ~/.corral unless CORRAL_HOME is set)")
        if name == "startup":
            p.add_argument("--print", action="store_true", help="print the unit, write nothing")

    p = sub.add_parser("export", help="files for systemd, Docker, compose, Kubernetes, nginx or Ansible")
    p.add_argument("kind", choices=["systemd", "docker", "compose", "kubernetes", "nginx", "ansible"])
    p.add_argument("file", nargs="?",
                   help="the ecosystem file (default: corral.toml or ecosystem.config.js here; "
                        "systemd without a file: the unit of corral itself)")
    p.add_argument("-o", "--output", metavar="DIR", help="write the files into DIR (default: print them)")
    p.add_argument("--env", help="use env_<ENV> on top of env")
    p.add_argument("--only", help="only these apps (comma-separated)")
    p.add_argument("--image", help="docker/compose/kubernetes: the image name (default: the first app's name)")
    p.add_argument("--server-name", default="example.com", help="nginx: the server's name (certbot's domain)")
    p.add_argument("--static", metavar="DIR", help="nginx: a folder served under /static/ with long-lived caching")
    p.add_argument("--listen", default="80", help="nginx: the server's listen address (default 80)")
    p.add_argument("--hosts", help="ansible: the inventory's hosts (comma-separated; default: localhost)")
    p.add_argument("--serial", default="1", help="ansible: hosts deployed at a time (a count or 25%%; default 1)")
    p.add_argument("--max-fail-percentage", type=int, default=0,
                   help="ansible: stop the rollout when more hosts than this failed (default 0)")
