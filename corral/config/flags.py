"""``corral start`` flags for app settings, generated from :data:`corral.config.fields.FIELDS`.

The table below is written by ``python -m corral.config.docs --write`` (a test fails while it is
out of date); it is plain data so that building the CLI's parser imports no converters.

A flag's value is a raw setting, exactly as a file would give it: it goes through the field's
converter, so a bad one gets the same one-line error as in a file.  Paths given as flags are
relative to the directory the command runs in.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs start-up time on the CLI
    import argparse
    from typing import Any

#: (field, options, kind, metavar, help).  Kinds: "value" (the text as given), "int" (a whole
#: number when it looks like one), "ints" (one or more of those), "path" (made absolute), "bool"
#: (``--x`` / ``--no-x``), "false" (``--no-x`` sets false), "append" (repeatable).
# --- generated from FIELDS: python -m corral.config.docs --write ---
START_FLAGS: tuple[tuple[str, tuple[str, ...], str, str, str], ...] = (
    ("name", ("-n", "--name"), "value", "NAME",
     "name of the app (default: the script's name)"),
    ("namespace", ("--namespace",), "value", "NAME",
     "a group name usable as a target"),
    ("interpreter", ("--interpreter",), "path", "PATH",
     "interpreter for the script (\"none\": exec it directly)"),
    ("interpreter_args", ("--interpreter-args", "--node-args"), "value", "ARGS",
     "arguments between the interpreter and the script"),
    ("venv", ("--venv",), "path", "PATH",
     "a virtualenv whose bin/ provides python and cmd[0]"),
    ("cwd", ("--cwd",), "path", "PATH",
     "working directory (default: the file's folder, or here)"),
    ("instances", ("-i", "--instances"), "int", "N",
     "number of instances: N, \"max\" (one per CPU), 0 or -1"),
    ("env_file", ("--env-file",), "path", "PATH",
     ".env file read at every start"),
    ("env_inherit", ("--env-inherit",), "append", "NAME",
     "secret variables of the starting shell the app keeps (names or patterns like AWS_*)"),
    ("autorestart", ("--no-autorestart",), "false", "",
     "autorestart = false; restart policy: true (always), false (never) or \"on-failure\""),
    ("max_restarts", ("--max-restarts",), "int", "N",
     "consecutive failures before \"errored\""),
    ("restart_delay", ("--restart-delay",), "value", "DURATION",
     "added to every restart"),
    ("exp_backoff_restart_delay", ("--exp-backoff-restart-delay",), "value", "DURATION",
     "base of the backoff after fast failures"),
    ("kill_timeout", ("-k", "--kill-timeout"), "value", "DURATION",
     "graceful budget before SIGKILL to the group"),
    ("stop_signal", ("--stop-signal",), "value", "SIGNAL",
     "the graceful signal (a PM2 file's default: SIGINT)"),
    ("stop_exit_codes", ("--stop-exit-codes",), "ints", "CODE",
     "exit codes that are not restarted"),
    ("out_file", ("-o", "--output"), "path", "PATH",
     "file for stdout"),
    ("error_file", ("-e", "--error"), "path", "PATH",
     "file for stderr"),
    ("merge_logs", ("--merge-logs",), "bool", "",
     "one log file for all instances"),
    ("log_type", ("--log-type",), "value", "TYPE",
     "log lines: \"raw\" or \"json\""),
    ("log_date_format", ("--log-date-format",), "value", "FORMAT",
     "timestamp format (moment.js or strftime)"),
    ("time", ("--time",), "bool", "",
     "prefix every log line with a timestamp"),
    ("shell", ("--shell",), "bool", "",
     "run through /bin/sh -c"),
    ("user", ("--user", "--uid"), "value", "NAME",
     "run as this user (daemon running as root)"),
    ("group", ("--group", "--gid"), "value", "NAME",
     "run with this group (daemon running as root)"),
    ("listen", ("--listen",), "append", "ADDRESS",
     "a socket the daemon binds and hands to every instance"),
    ("wait_ready", ("--wait-ready",), "bool", "",
     "wait for READY=1 (same as ready = \"notify\")"),
    ("listen_timeout", ("--listen-timeout",), "value", "DURATION",
     "with no readiness signal: ready once up this long"),
    ("max_memory_restart", ("--max-memory-restart",), "int", "SIZE",
     "replace an instance whose process tree stays over this much memory (300M, 1G)"),
    ("cron_restart", ("-c", "--cron-restart", "--cron"), "value", "CRON_RESTART",
     "restart gracefully on a cron schedule (\"0 3 * * *\"; rolling when the app has a socket)"),
)
# --- end of generated flags ---

#: PM2's flags for keys FIELDS does not declare yet (they are in ``fields.PM2_IGNORED``: accepted,
#: and named in the "not supported yet, ignored" warning).  Same shape and kinds as above; a row
#: whose key has a generated flag (its Field gained ``flag=``) is left out, so nothing breaks when
#: the setting lands.  TODO(issue 9 item 3): ``watch``, ``ignore_watch``, ``watch_delay`` and
#: ``log_file`` become fields there (move these options into their ``Field.flag`` then);
PENDING_FLAGS: tuple[tuple[str, tuple[str, ...], str, str, str], ...] = (
    ("watch", ("--watch",), "bool", "",
     "restart when files of the app's folder change (PM2's --watch)"),
    ("ignore_watch", ("--ignore-watch",), "append", "PATH",
     "with --watch: paths or patterns to ignore"),
    ("watch_delay", ("--watch-delay",), "value", "DURATION",
     "with --watch: wait this long after a change"),
    ("log_file", ("-l", "--log"), "path", "PATH",
     "one file for stdout and stderr together (PM2's combined log)"),
)

DEST = "setting_"


def all_flags() -> tuple[tuple[str, tuple[str, ...], str, str, str], ...]:
    """The generated flags, then the pending ones whose key has no generated flag yet."""
    declared = {name for name, *_ in START_FLAGS}
    taken = {option for _, options, *_ in START_FLAGS for option in options}
    pending = tuple(row for row in PENDING_FLAGS if row[0] not in declared and not taken & set(row[1]))
    return START_FLAGS + pending


def add_setting_flags(parser: argparse.ArgumentParser) -> None:
    """Add every setting's flag to ``parser`` (values land in ``setting_<field>``, None if not given)."""
    import argparse

    for name, options, kind, metavar, text in all_flags():
        dest = DEST + name
        if kind == "bool":
            parser.add_argument(*options, dest=dest, action=argparse.BooleanOptionalAction, help=text)
        elif kind == "false":
            parser.add_argument(*options, dest=dest, action="store_const", const=False, help=text)
        elif kind == "ints":
            parser.add_argument(*options, dest=dest, nargs="+", metavar=metavar, help=text)
        elif kind == "append":
            parser.add_argument(*options, dest=dest, action="append", metavar=metavar, help=text)
        else:
            parser.add_argument(*options, dest=dest, metavar=metavar, help=text)


def _number(text: str) -> Any:
    """``"4"`` -> 4 (a file would say ``max_restarts = 4``); anything else stays text, for the
    converter to accept (``"max"``) or reject with its usual message."""
    stripped = text.strip()
    return int(stripped) if stripped.lstrip("+-").isdigit() else text


def _path(name: str, text: str, cwd: str) -> str:
    if name == "interpreter" and "/" not in text and not text.startswith("~"):
        return text  # "python3.12", "none": looked up on PATH
    return os.path.normpath(os.path.join(cwd, os.path.expanduser(text)))


def settings_from_flags(args: argparse.Namespace, cwd: str) -> dict[str, Any]:
    """The raw settings the given flags set, by field name (flags not given are left out)."""
    raw: dict[str, Any] = {}
    for name, _, kind, _, _ in all_flags():
        value = getattr(args, DEST + name, None)
        if value is None:
            continue
        if kind == "int":
            value = _number(value)
        elif kind == "ints":
            value = [_number(v) for v in value]
        elif kind == "path":
            value = _path(name, value, cwd)
        raw[name] = value
    return raw


def flag_of(name: str) -> str:
    """The long option of a field's flag, for messages (``kill_timeout`` -> ``--kill-timeout``)."""
    for field, options, _, _, _ in all_flags():
        if field == name:
            return next((o for o in options if o.startswith("--")), options[0])
    return name
