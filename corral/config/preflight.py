"""What ``start`` needs from this machine, checked before anything is sent: ``corral validate``
and ``corral start`` (and ``run``, ``restart --update-env``) run :func:`runnable_problems` on each
normalized app they would start.

The values themselves were checked by the converters; here the things they name: ``cwd`` is a
directory, ``script`` a file (unless a shell runs it), ``interpreter`` a program, ``venv`` a
virtualenv, ``env_file`` a readable regular file that parses, the log files are not directories,
``user`` and ``group`` exist, what ``watch`` names is there.  Each problem is one line naming the
app, the key and the value.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

from corral.config.convert import render
from corral.config.errors import ConfigError


def _is_dir(path: str) -> str | None:
    if not os.path.exists(path):
        return "does not exist"
    return None if os.path.isdir(path) else "is not a directory"


def _is_file(path: str, what: str) -> str | None:
    if os.path.isdir(path):
        return f"is a directory (give {what})"
    return None if os.path.exists(path) else "does not exist"


def _program(path: str) -> str | None:
    """An interpreter: a path to an executable file, or a name found on PATH."""
    if "/" not in path:
        return None if shutil.which(path) else "is not on PATH (give its full path, or install it)"
    problem = _is_file(path, "a program")
    if problem is None and not os.access(path, os.X_OK):
        return "is not executable"
    return problem


def _exists(path: str) -> str | None:
    return None if os.path.exists(path) else "does not exist (watch names files or folders to watch)"


def _venv(path: str) -> str | None:
    problem = _is_dir(path)
    if problem is None and not os.path.isdir(os.path.join(path, "bin")):
        return "is not a virtualenv (it has no bin/)"
    return problem


def _log_file(path: str) -> str | None:
    if os.path.isdir(path):
        return "is a directory (give a file; corral creates it)"
    parent = os.path.dirname(path) or "."
    while not os.path.exists(parent):  # corral creates the missing folders
        parent = os.path.dirname(parent)
    return None if os.path.isdir(parent) else f"is under {render(parent)}, which is not a directory"


def _account(name: str, kind: str) -> str | None:
    import grp
    import pwd

    look = pwd.getpwuid if kind == "user" else grp.getgrgid
    by_name = pwd.getpwnam if kind == "user" else grp.getgrnam
    try:
        if name.isascii() and name.isdigit():
            look(int(name))
        else:
            by_name(name)
    except (KeyError, OverflowError, ValueError):
        return f"is not a {kind} on this machine"
    return None


def _env_file(path: str) -> str | None:
    from corral.config.envfile import read_env_file
    from corral.config.readfile import READ_TIMEOUT

    try:
        read_env_file(path, READ_TIMEOUT)
    except ConfigError as exc:
        return f"cannot be used: {exc.messages[0]}"
    return None


def runnable_problems(spec: dict[str, Any], label: str) -> list[str]:
    """One line per thing this machine lacks for starting SPEC (``label: key: value problem``)."""
    checks: list[tuple[str, Any]] = [("cwd", _is_dir)]
    if spec.get("script") and not spec.get("shell"):
        checks.append(("script", lambda p: _is_file(p, "a file to run")))
    if spec.get("interpreter") and spec["interpreter"] != "none":
        checks.append(("interpreter", _program))
    checks += [("venv", _venv), ("env_file", _env_file), ("out_file", _log_file), ("error_file", _log_file),
               ("user", lambda n: _account(n, "user")), ("group", lambda n: _account(n, "group"))]
    if isinstance(spec.get("log_file"), str):
        checks.append(("log_file", _log_file))
    checks += [("watch", _exists)] * len(spec.get("watch") or [])
    watched = iter(spec.get("watch") or [])
    problems = []
    for key, check in checks:
        value = next(watched) if key == "watch" else spec.get(key)
        if not value:
            continue
        problem = check(value)
        if problem is not None:
            problems.append(f"{label}: {key}: {render(value)} {problem}")
            if key == "cwd":
                break  # every relative path was resolved against it: the rest would repeat it
    return problems
