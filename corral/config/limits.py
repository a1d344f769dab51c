"""The bounds every app setting stays within, declared once.

The converters (:mod:`corral.config.convert`, the CLI side) refuse values outside them with a
message naming the file, app and field; the daemon checks every spec it receives against the same
bounds (:mod:`corral.config.speccheck`), so a raw-socket client cannot store one either.

The instance ceiling is a daemon-wide setting: ``CORRAL_MAX_INSTANCES`` (default 1024) in the
environment of the daemon (and of the CLI, which checks a file before sending it).
Standard library only (the daemon imports this).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

DEFAULT_MAX_INSTANCES = 1024
MAX_INSTANCES_VAR = "CORRAL_MAX_INSTANCES"
CEILING_LIMIT = 100_000  # the highest CORRAL_MAX_INSTANCES accepted

DAY = 86400.0
MAX_DURATION = 7 * DAY  # kill_timeout, delays, probe timeouts, watchdog ...: at most a week
MAX_AGE = 3650 * DAY  # log_max_age: at most ten years
MAX_SIZE = 1024**4  # log_max_size: at most 1 TB
MAX_COUNT = 1_000_000_000  # max_restarts, log_retain
MAX_LIST = 4096  # items in args, cmd, listen, depends_on, redact lists, stop_exit_codes
MAX_ENV = 10_000  # variables in env (and in the base environment a start sends)
MAX_STRING = 128 * 1024  # bytes in one argument or variable value (Linux: MAX_ARG_STRLEN)
PATH_MAX = 4095  # bytes in a path (Linux: PATH_MAX with its NUL)
NAME_MAX = 255  # bytes in one component of a path
MAX_SOCKET_PATH = 107  # bytes in a unix socket path (sun_path with its NUL)
MAX_ACCOUNT = 256  # characters in a user or group name

MIN_LINE = 1024  # log_max_line: from 1K ...
MAX_LINE = 16 * 1024 * 1024  # ... to 16 MB
DURATION_HINT = "at most 7 days"
SIZE_HINT = 'at most "1TB"'


def max_instances(environ: Mapping[str, str] | None = None) -> int:
    """The instance ceiling: ``CORRAL_MAX_INSTANCES`` when it is a valid number, else 1024
    (:func:`ceiling_problem` says what is wrong with it)."""
    raw = (os.environ if environ is None else environ).get(MAX_INSTANCES_VAR, "")
    return _ceiling(raw) or DEFAULT_MAX_INSTANCES


def _ceiling(raw: str) -> int | None:
    text = raw.strip()
    if text.isascii() and text.isdigit() and len(text) <= 7 and 1 <= int(text) <= CEILING_LIMIT:
        return int(text)
    return None


def ceiling_problem(environ: Mapping[str, str] | None = None) -> str | None:
    """One line when ``CORRAL_MAX_INSTANCES`` is set but not a valid ceiling (the daemon refuses
    to start with it), else None."""
    raw = (os.environ if environ is None else environ).get(MAX_INSTANCES_VAR)
    if raw is None or raw == "" or _ceiling(raw) is not None:
        return None
    shown = raw if len(raw) <= 40 else raw[:40] + "..."
    return (f"{MAX_INSTANCES_VAR}={shown!r} is not an instance ceiling "
            f"(use a whole number from 1 to {CEILING_LIMIT}; default {DEFAULT_MAX_INSTANCES})")


def instances_hint(ceiling: int) -> str:
    more = f"; {MAX_INSTANCES_VAR} raises the ceiling" if ceiling == DEFAULT_MAX_INSTANCES else \
        f" ({MAX_INSTANCES_VAR})"
    return f"at most {ceiling}{more}"


def text_problem(value: str) -> str | None:
    """Why a string cannot reach the OS (a NUL, a lone surrogate), or None."""
    if "\0" in value:
        return "contains a NUL character"
    try:
        value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return "contains a lone surrogate (not valid text)"
    return None


def path_problem(value: str) -> str | None:
    """Why a path cannot be opened (a NUL, too long for PATH_MAX or NAME_MAX), or None."""
    problem = text_problem(value)
    if problem is not None:
        return f"{problem} (a path cannot hold one)"
    size = len(value.encode("utf-8", "surrogateescape"))
    if size > PATH_MAX:
        return f"is {size} bytes long (a path has at most {PATH_MAX}: PATH_MAX)"
    longest = max(len(part.encode("utf-8", "surrogateescape")) for part in value.split("/"))
    if longest > NAME_MAX:
        return f"has a {longest}-byte name in it (at most {NAME_MAX}: NAME_MAX)"
    return None


#: Every limit an app may set, and what its numbers count (setrlimit(2)'s units).
RLIMITS: dict[str, str] = {
    "as": "bytes", "core": "bytes", "cpu": "seconds", "data": "bytes", "fsize": "bytes",
    "locks": "locks", "memlock": "bytes", "msgqueue": "bytes", "nice": "a nice ceiling (20 - nice)",
    "nofile": "open files", "nproc": "processes", "rss": "bytes", "rtprio": "a real-time priority",
    "rttime": "microseconds", "sigpending": "signals", "stack": "bytes",
}
