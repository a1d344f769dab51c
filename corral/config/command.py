"""How an app spec becomes a command: argv resolution and default app names.

Owns decisions that must agree between the loader and the daemon:

* :func:`resolve_argv` turns a normalized spec into the argv the daemon execs
  (interpreter chosen by extension, virtualenv honoured, never a shell unless
  ``shell`` is true);
* :func:`node_mode` says whether that program is Node in PM2's cluster mode, and whether it
  gets Node's IPC channel;
* :func:`default_name` / :func:`sanitize_name` give an app its name when the
  user did not (PM2 behaviour: the script's basename without extension).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

TYPE_CHECKING = False
if TYPE_CHECKING:
    from corral.config.spec import AppSpec

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
RESERVED_NAMES = frozenset({"all"})

PYTHON_EXTENSIONS = frozenset({".py", ".pyw"})
NODE_EXTENSIONS = frozenset({".js", ".mjs", ".cjs"})
SCRIPT_EXTENSIONS = frozenset(
    {".py", ".pyw", ".js", ".mjs", ".cjs", ".ts", ".rb", ".pl", ".php", ".sh", ".bash"}
)
_INTERPRETER_RE = re.compile(r"^(python[0-9.]*|pypy[0-9.]*|node|nodejs|bun|deno|ruby|perl|php|sh|bash)$")
# Interpreter options whose next argv element is a value, not the program.
_OPTIONS_WITH_VALUE = frozenset({"-X", "-W", "-r", "--require", "--import", "--loader"})
# Options after which the program is inline code: the name falls back to the interpreter.
_INLINE_CODE = frozenset({"-c", "-e", "--eval", "-p", "--print"})
_SUBCOMMANDS = frozenset({"run"})  # bun run x.ts, deno run main.ts
_NODE_RE = re.compile(r"^node(js)?[0-9.]*$")


def is_valid_name(name: object) -> bool:
    """True when ``name`` fits the app-name rule (also used for namespaces)."""
    return (
        isinstance(name, str)
        and NAME_RE.match(name) is not None
        and not name.isdigit()
        and name not in RESERVED_NAMES
    )


def sanitize_name(text: str) -> str:
    """Turn any text into a valid app name (invalid characters become ``-``)."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", text)
    name = re.sub(r"^[^A-Za-z0-9]+", "", name)[:64].rstrip("-") or "app"
    if not is_valid_name(name):
        name = f"app-{name}"[:64]
    return name


def _strip_script_extension(path: str) -> str:
    base = os.path.basename(path.rstrip("/")) or path
    stem, extension = os.path.splitext(base)
    return stem if extension in SCRIPT_EXTENSIONS and stem else base


def _program_of(cmd: Sequence[str]) -> str:
    """The program an interpreter command runs, e.g. ``server`` for ``node server.js``."""
    interpreter = os.path.basename(cmd[0])
    index = 1
    while index < len(cmd):
        arg = cmd[index]
        if arg in _INLINE_CODE:
            return interpreter
        if arg == "-m" and index + 1 < len(cmd):
            return cmd[index + 1]
        if arg in _OPTIONS_WITH_VALUE:
            index += 2
            continue
        if arg.startswith("-") or (index == 1 and arg in _SUBCOMMANDS):
            index += 1
            continue
        return _strip_script_extension(arg)
    return interpreter


def _shell_words(command: str) -> list[str]:
    try:
        import shlex  # only for names of shell commands: kept out of the daemon's memory

        return shlex.split(command)
    except ValueError:
        return command.split()


def default_name(script: str | None, cmd: Sequence[str] | None, shell: bool = False) -> str:
    """The name an app gets when none is given, already sanitized.

    A script gives its basename without extension; a command whose program is
    a known interpreter gives the program it runs (``node server.js`` ->
    ``server``); any other command gives the basename of ``cmd[0]``.  A shell
    command line is split into words and named like a command.
    """
    if shell:
        cmd = _shell_words(script if script else (cmd[0] if cmd else ""))
        script = None
    if script:
        return sanitize_name(_strip_script_extension(script))
    if cmd:
        first = os.path.basename(cmd[0]) or cmd[0]
        if _INTERPRETER_RE.match(first):
            return sanitize_name(_program_of(cmd))
        return sanitize_name(first)
    return "app"


def shell_command(spec: AppSpec) -> str:
    """The command line a ``shell = true`` app hands to ``/bin/sh -c``."""
    if spec.cmd:
        return spec.cmd[0]
    import shlex

    return " ".join([str(spec.script), shlex.join(spec.args)]) if spec.args else str(spec.script)


def _venv_program(venv: str | None, program: str) -> str:
    if venv and "/" not in program:
        candidate = os.path.join(venv, "bin", program)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return program


def _interpreter_for(spec: AppSpec, python: str) -> str | None:
    """The interpreter for ``spec.script``, or None to exec the script directly."""
    return _interpreter(spec.script, spec.interpreter, spec.venv, python)


def _interpreter(script: str | None, interpreter: str | None, venv: str | None, python: str) -> str | None:
    if interpreter == "none":
        return None
    extension = os.path.splitext(str(script))[1].lower()
    if extension in PYTHON_EXTENSIONS:
        if venv:
            return os.path.join(venv, "bin", "python")
        return str(interpreter) if interpreter else python
    if extension in NODE_EXTENSIONS:
        return str(interpreter) if interpreter else "node"
    return str(interpreter) if interpreter else None


def _field(spec: AppSpec | Mapping[str, Any], key: str) -> Any:
    return spec.get(key) if isinstance(spec, Mapping) else getattr(spec, key)


def runs_node(spec: AppSpec | Mapping[str, Any]) -> bool:
    """Whether the program corral starts for ``spec`` (an AppSpec or its dict) is node itself:
    a ``.js``/``.mjs``/``.cjs`` script, an ``interpreter`` named node, or ``cmd = ["node", ...]``.
    Not through a shell, npm or another program: the preload and the IPC channel are node's."""
    if _field(spec, "shell"):
        return False
    cmd = _field(spec, "cmd")
    if cmd:
        program: str | None = cmd[0]
    else:
        program = _interpreter(_field(spec, "script"), _field(spec, "interpreter"), _field(spec, "venv"), "python")
    return program is not None and _NODE_RE.match(os.path.basename(program)) is not None


def node_mode(spec: AppSpec | Mapping[str, Any]) -> tuple[bool, bool]:
    """``(cluster, ipc)`` for a Node app (both False for any other program).

    *cluster*, PM2's cluster mode: ``exec_mode = "cluster"``, or more than one instance when
    ``exec_mode`` is not given (as PM2 decides); its instances run with corral's preload
    (``node -r``), which makes ``listen(port)`` use corral's per-slot sockets.  *ipc*: Node's IPC
    channel (``NODE_CHANNEL_FD``), for cluster mode, ``wait_ready`` (``process.send('ready')``)
    and ``shutdown_with_message``.
    """
    if not runs_node(spec):
        return False, False
    mode = _field(spec, "exec_mode")
    cluster = mode == "cluster" or (mode is None and (_field(spec, "instances") or 1) > 1)
    return cluster, bool(cluster or _field(spec, "wait_ready") or _field(spec, "shutdown_with_message"))


def with_preload(argv: list[str], preload: str) -> list[str]:
    """``node -r PRELOAD ...``: the preload runs before the app's own code."""
    return [argv[0], "-r", preload, *argv[1:]]


def resolve_argv(spec: AppSpec, python: str) -> list[str]:
    """The argv the daemon executes for a normalized ``spec``.

    ``python`` is the interpreter for ``.py`` scripts when neither ``venv`` nor
    ``interpreter`` says otherwise (normally ``sys.executable``).
    """
    if spec.shell:
        return ["/bin/sh", "-c", shell_command(spec)]
    cmd = spec.cmd
    if cmd:
        return [_venv_program(spec.venv, cmd[0]), *cmd[1:]]
    script = str(spec.script)
    args = list(spec.args)
    interpreter = _interpreter_for(spec, python)
    if interpreter is None:
        return [script, *args]
    interpreter = _venv_program(spec.venv, interpreter)
    interpreter_args = list(spec.interpreter_args)
    return [interpreter, *interpreter_args, script, *args]
