"""PM2's semantics for PM2's files: which files they are, and what PM2 does that corral's TOML does not.

A *PM2 file* is one PM2 itself reads: JavaScript (``ecosystem.config.js``, ``.cjs``, ``.mjs``) or
JSON (``ecosystem.json``, ``process.json``).  TOML and YAML are corral's own formats and stay
strict.  In a PM2 file (:func:`is_pm2_file`):

* the default stop signal is SIGINT, as PM2 sends (its docs tell apps to clean up on SIGINT);
  a TOML app keeps SIGTERM;
* a key neither PM2 nor corral knows is one warning line, never an error; two spellings of one
  setting (``merge_logs`` and ``combine_logs``) are one warning when they differ, nothing when
  they agree; ``exec_mode: "fork"`` is PM2's default and says nothing;
* ``cmd: "app.py"`` (a string) is the script, as PM2 reads it;
* a file holding one app object (``{"name": ..., "script": ...}``, no ``apps``) is that app;
* the interpreter follows the script's extension as PM2's table has it (:data:`INTERPRETERS`:
  ``.sh`` runs with bash, so no exec bit is needed); a script with no known extension runs with
  node unless it is a program (a binary, or an executable file with a ``#!`` line, which runs as
  it is) or its ``#!`` line names another interpreter.

Any file: ``"NULL"`` as a log path is ``/dev/null`` (PM2's spelling of "discard").
"""

from __future__ import annotations

import os
from typing import Any

from corral.config import limits
from corral.config.convert import Invalid, to_path

#: The suffixes of the files PM2 reads itself.
PM2_SUFFIXES = (".js", ".cjs", ".mjs", ".json")

#: PM2's interpreter by extension (its ``lib/API/interpreter.json``); ``.py`` is resolved to
#: ``python`` when that is on PATH, else ``python3`` (PM2 does the same).
INTERPRETERS = {
    ".sh": "bash", ".py": "python", ".rb": "ruby", ".php": "php", ".pl": "perl", ".js": "node",
    ".coffee": "coffee", ".ls": "lsc", ".ts": "bun", ".tsx": "bun",
}
NODE_SCRIPTS = frozenset({".js", ".mjs", ".cjs"})  # corral's own default is node already
DISCARD = "/dev/null"


def is_pm2_file(path: str | None) -> bool:
    """True for a file PM2 reads itself (JavaScript or JSON)."""
    return bool(path) and os.path.splitext(str(path))[1].lower() in PM2_SUFFIXES


def log_target(path: str) -> str:
    """PM2's ``"NULL"`` is ``/dev/null``; any other path is kept."""
    return DISCARD if path == "NULL" else path


def unknown_key_warning(key: str, value: Any, known: list[str], what: str = "key") -> str:
    """The rest of the warning line for a key of a PM2 file that neither PM2 nor corral reads:
    its value (not shown when the key looks secret), ignored, and the closest known key."""
    import difflib

    from corral.app.redact import is_secret_name
    from corral.config.convert import render

    shown = "(value not shown)" if is_secret_name(key) else render(value)
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.75)
    hint = f'did you mean "{close[0]}"?' if close else 'corral\'s README lists the keys it reads, in "Ecosystem files"'
    return f"{shown} ignored: not a {what} PM2 or corral reads ({hint})"


def _head(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(512)
    except OSError:
        return b""


def _shebang(head: bytes) -> list[str]:
    """The interpreter and its one argument from a ``#!`` line (as the kernel splits it)."""
    if not head.startswith(b"#!"):
        return []
    line = head[2:].split(b"\n", 1)[0].decode("utf-8", "replace").strip()
    parts = line.split(None, 1)
    return parts if parts and parts[0].startswith("/") else []


def _program(shebang: list[str]) -> str:
    """The program a ``#!`` line runs (``/usr/bin/env bash`` runs bash)."""
    if os.path.basename(shebang[0]) == "env" and len(shebang) > 1:
        return os.path.basename(shebang[1].split()[0])
    return os.path.basename(shebang[0])


def interpreter_for(script: str, venv: str | None, given_args: bool) -> tuple[str | None, list[str]]:
    """(interpreter, interpreter args) PM2 would pick for ``script`` when the file names none;
    None keeps corral's own choice (node for .js, the venv's python, exec for a program)."""
    extension = os.path.splitext(script)[1].lower()
    if extension in NODE_SCRIPTS:
        return None, []
    if extension == ".py":
        if venv:
            return None, []
        import shutil

        return ("python" if shutil.which("python") else "python3"), []
    if extension in INTERPRETERS:
        return INTERPRETERS[extension], []
    head = _head(script)
    if b"\0" in head or head.startswith(b"\x7fELF"):
        return None, []  # a program: exec'd as it is
    shebang = _shebang(head)
    if shebang and os.access(script, os.X_OK):
        return None, []  # an executable script: the kernel reads its #! line
    if shebang and not given_args and _program(shebang) not in ("node", "nodejs"):
        return shebang[0], shebang[1:]  # no exec bit: run what its #! line names
    return "node", []


# -- converters for the keys PM2 has and corral implements here ----------------------------


def to_log_file(value: Any) -> bool | str | None:
    """PM2's combined log: a path, true (``logs/<name>.log``) or false (none)."""
    if isinstance(value, bool):
        return True if value else None
    try:
        return to_path(value)
    except Invalid:
        raise Invalid('is not a log file (use a path, true for logs/<name>.log, or false)') from None


def _pattern_list(value: Any, what: str, hint: str) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if isinstance(items, list) and len(items) <= limits.MAX_LIST and \
            all(isinstance(v, str) and v.strip() and len(v) <= 1024 and limits.text_problem(v) is None
                for v in items):
        return [v.strip() for v in items]
    raise Invalid(f"is not {what} ({hint})")


def to_watch(value: Any) -> list[str]:
    """What to watch: true (the app's cwd), false, a path, or a list of paths (relative to cwd)."""
    if isinstance(value, bool):
        return ["."] if value else []
    paths = _pattern_list(value, "a watch setting", 'use true, false, a path or a list of paths, like ["src"]')
    for path in paths:
        problem = limits.path_problem(path)
        if problem is not None:
            raise Invalid(problem)
    return paths


def to_ignore_watch(value: Any) -> list[str]:
    """Paths, globs or regular expressions whose changes do not restart the app."""
    return _pattern_list(value, "a list of paths to ignore",
                         'use a list of paths, globs or regular expressions, like ["node_modules", "*.log"]')
