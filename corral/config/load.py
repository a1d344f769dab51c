"""Reading ecosystem files and command-line starts into normalized app specs.

Owns the file side of config: format detection by suffix (TOML, YAML, JSON,
PM2's ``ecosystem.config.js``/``.cjs``/``.mjs`` evaluated with node), parse
errors with line numbers, the top-level keys, duplicate names, ``only``
filtering, ``corral validate`` (:func:`validate_file`) and specs built from
``corral start app.py -- args`` / ``corral start -- prog args``
(:func:`from_command_line`).  Per-app rules live in :mod:`corral.config.fields`.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Callable, Iterable
from typing import Any


from corral.config.convert import Invalid, render, shown_key
from corral.config.errors import ConfigError
from corral.config.fields import FIELD_BY_KEY, FIELD_BY_NAME
from corral.config.host import HOST_KEYS, host_errors, host_warnings
from corral.config.logkeys import APP_DEFAULT_KEYS, app_defaults
from corral.config.normalize import normalize_app
from corral.config.pm2 import is_pm2_file, unknown_key_warning
from corral.config.readfile import MAX_CONFIG, MAX_DEPTH, READ_TIMEOUT, Unreadable, read_capped, yaml_document
from corral.control.protocol import too_deep

FORMATS_HINT = "use .toml, .yaml, .yml, .json or ecosystem.config.js"
NODE_TIMEOUT = 15.0
NESTED = f"nested more than {MAX_DEPTH} levels deep (an ecosystem file needs a few)"

#: Top-level keys: name -> what it holds.  Keys mapped to None are accepted and not read here
#: (``deploy``: ``corral deploy`` reads it, ``corral.deploy.config``).  A new top-level key (e.g.
#: log defaults) gets an entry here and is consumed in :func:`_normalize_document`.
TOP_LEVEL_KEYS: dict[str, str | None] = {
    "apps": "the list of apps",
    "deploy": None,
    "jobs": "the list of jobs (cron, interval, at, on start)",
}
TOP_LEVEL_KEYS.update(dict.fromkeys(APP_DEFAULT_KEYS, "a default for every app (log settings)"))
TOP_LEVEL_KEYS.update(HOST_KEYS)  # daemon-wide settings (corral.config.host)

_NODE_MARK = "@@corral-ecosystem-json@@"
# Evaluate the file given as argv[1]; print a marker then JSON of its exports (a RegExp, as in
# PM2's ignore_watch, becomes its source).
# CommonJS is loaded with require(); ES modules fall back to import().
_NODE_SCRIPT = (
    "const p=process.argv[1];"
    "const out=m=>{if(m&&Object.prototype.toString.call(m)==='[object Module]'&&m.default!==undefined)m=m.default;"
    "const s=JSON.stringify(m===undefined?null:m,(k,v)=>v instanceof RegExp?v.source:v);"
    f"process.stdout.write('\\n{_NODE_MARK}\\n'+(s===undefined?'null':s));}};"
    "const fail=e=>{console.error(e&&e.stack||String(e));process.exit(1)};"
    "let m;try{m=require(p)}catch(e){if(e&&e.code==='ERR_REQUIRE_ESM'){"
    "import(require('url').pathToFileURL(p).href).then(out,fail);return}fail(e)}out(m);"
)
_NODE_SCRIPT = "(()=>{" + _NODE_SCRIPT + "})()"


# --- parsing --------------------------------------------------------------------


def _parse_toml(text: str, where: str) -> Any:
    try:
        return tomllib.loads(text)
    except RecursionError:
        raise ConfigError(f"{where}: {NESTED}") from None
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = re.search(r"\s*\(at line (\d+), column \d+\)$", message)
        if match:
            raise ConfigError(f"{where}: line {match.group(1)}: {message[: match.start()]}") from None
        match = re.search(r"\s*\(at end of document\)$", message)
        if match:
            raise ConfigError(f"{where}: end of file: {message[: match.start()]}") from None
        raise ConfigError(f"{where}: {message}") from None


def _parse_yaml(text: str, where: str) -> Any:
    import yaml  # slow to import: only for YAML files

    try:
        return yaml_document(text)
    except RecursionError:
        raise ConfigError(f"{where}: {NESTED}") from None
    except ValueError as exc:  # too deep, an alias bomb, an alias to itself
        raise ConfigError(f"{where}: {exc}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        line = f"line {mark.line + 1}: " if mark is not None else ""
        raise ConfigError(f"{where}: {line}{problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: {str(exc).splitlines()[0]}") from None


def _parse_json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except RecursionError:
        raise ConfigError(f"{where}: {NESTED}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{where}: line {exc.lineno}: {exc.msg}") from None
    except ValueError as exc:  # a number of more than 4300 digits
        raise ConfigError(f"{where}: {str(exc).split(';')[0]}") from None


def _node_error(stderr: str, path: str, where: str) -> ConfigError:
    """The first error line of node's stderr, with the file's line number when known."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    line_no = ""
    escaped = re.escape(path)
    match = re.search(rf"^{escaped}:(\d+)$", stderr, re.MULTILINE) or re.search(rf"{escaped}:(\d+):\d+", stderr)
    if match:
        line_no = f"line {match.group(1)}: "
    errors = [line for line in lines if re.match(r"^([A-Za-z_$][\w$.]*)?(Error|Exception)\b", line)]
    first = errors[0] if errors else (lines[0] if lines else "node exited with an error")
    if line_no:
        return ConfigError(f"{where}: {line_no}{first}")
    return ConfigError(f"{where}: node could not evaluate the file: {first}")


def _evaluate_js(path: str, where: str) -> Any:
    import shutil
    import subprocess

    node = shutil.which("node")
    if node is None:
        raise ConfigError(
            f"{where}: node is not on PATH (install Node.js to read a .js ecosystem, or convert it to .toml or .json)"
        )
    absolute = os.path.abspath(path)
    try:
        done = subprocess.run(
            [node, "-e", _NODE_SCRIPT, absolute],
            cwd=os.path.dirname(absolute),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=NODE_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ConfigError(
            f"{where}: node did not finish within {NODE_TIMEOUT:g}s (the file must only export settings)"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{where}: cannot run node ({exc.strerror})") from None
    if done.returncode != 0 or _NODE_MARK not in done.stdout:
        raise _node_error(done.stderr, absolute, where)
    return _parse_json(done.stdout.rsplit(_NODE_MARK + "\n", 1)[1], where)


def _read_text(path: str, where: str) -> str:
    """The file's text: a regular file of at most 4 MiB, read within 10 s (a FIFO or a device is
    refused at once, never waited for)."""
    try:
        data = read_capped(path, MAX_CONFIG, READ_TIMEOUT)
    except Unreadable as exc:
        if exc.reason == "is a directory":
            raise ConfigError(f"{where}: is a directory (give an ecosystem file: {FORMATS_HINT})") from None
        raise ConfigError(f"{where}: {exc.reason}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: not UTF-8 text (save the file as UTF-8)") from None


_PARSERS: dict[str, Callable[[str, str], Any]] = {
    ".toml": _parse_toml,
    ".yaml": _parse_yaml,
    ".yml": _parse_yaml,
    ".json": _parse_json,
}
_JS_SUFFIXES = (".js", ".cjs", ".mjs")


def read_document(path: str) -> Any:
    """Parse the file at ``path`` into plain data; errors are prefixed with ``path``."""
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in _PARSERS and suffix not in _JS_SUFFIXES:
        if not os.path.exists(path):
            raise ConfigError(f"{path}: no such file")
        raise ConfigError(f'{path}: unsupported config format {render(suffix)} ({FORMATS_HINT})')
    if suffix in _JS_SUFFIXES:
        _read_text(path, path)  # existence and readability, with the same messages
        doc = _evaluate_js(path, path)
    else:
        doc = _PARSERS[suffix](_read_text(path, path), path)
    if too_deep(doc, MAX_DEPTH):
        raise ConfigError(f"{path}: {NESTED}")
    return doc


# --- documents --------------------------------------------------------------------


def _top_level_errors(doc: dict[str, Any], where: str, warnings: list[str] | None = None) -> list[str]:
    """Unknown top-level keys: errors, or one warning each in a PM2 file (``warnings``)."""
    errors = []
    for key in doc:
        if str(key) not in TOP_LEVEL_KEYS:
            if warnings is not None:
                warnings.append(f"{where}: {shown_key(str(key))}: "
                                + unknown_key_warning(str(key), doc[key], list(TOP_LEVEL_KEYS), "top-level key"))
                continue
            import difflib

            close = difflib.get_close_matches(str(key), list(TOP_LEVEL_KEYS), n=1, cutoff=0.6)
            hint = f'did you mean "{close[0]}"?' if close else 'a file holds "apps", and "deploy" for `corral deploy`'
            errors.append(f"{where}: {shown_key(str(key))}: unknown top-level key ({hint})")
    return errors


def _one_app(doc: dict[str, Any]) -> bool:
    """A PM2 file holding one app object (``process.json``: a script, no ``apps``)."""
    return "apps" not in doc and any(key in doc for key in ("script", "exec", "cmd"))


def _app_tables(doc: Any, where: str, warnings: list[str] | None = None) -> tuple[list[Any], list[str]]:
    """The raw app tables of a document, and top-level errors; with ``warnings`` (a PM2 file),
    one app object is the app and unknown top-level keys are warned about."""
    if isinstance(doc, list):  # PM2 also accepts a bare list of apps
        return doc, []
    if not isinstance(doc, dict):
        return [], [f'{where}: the file must hold "apps", a list of apps (in TOML: [[apps]] tables)']
    if warnings is not None and _one_app(doc):
        return [doc], []
    errors = _top_level_errors(doc, where, warnings)
    apps = doc.get("apps")
    if apps is None and doc.get("jobs") is not None:  # a file of jobs only
        return [], errors
    if apps is None:
        errors.append(f'{where}: "apps" is missing (add a list of apps; in TOML: [[apps]] tables)')
        return [], errors
    if isinstance(apps, dict):  # a single app object, as PM2 allows
        apps = [apps]
    if not isinstance(apps, list) or not apps:
        errors.append(f"{where}: apps: {render(apps)} is not a list of apps (add at least one app table)")
        return [], errors
    return apps, errors


def _with_overrides(raw: Any, overrides: dict[str, Any]) -> Any:
    """An app table with the command line's settings in place of its own (aliases included)."""
    if not overrides or not isinstance(raw, dict):
        return raw
    kept = {key: value for key, value in raw.items()
            if not (str(key) in FIELD_BY_KEY and FIELD_BY_KEY[str(key)].name in overrides)}
    return {**kept, **overrides}


def _normalize_document(
    doc: Any, *, where: str, source: str | None, env_name: str | None,
    overrides: dict[str, Any] | None = None, wanted: list[str] | None = None, check_files: bool = False,
    warnings: list[str] | None = None, jobs: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """The normalized apps of a document (its normalized jobs to ``jobs``); ``overrides`` apply to the ``wanted`` ones (all: None),
    the apps that are started, after the file itself has been checked; with ``check_files``, what
    the wanted apps name must be there (``preflight``).  A PM2 file's warnings go to ``warnings``."""
    base_dir = os.path.dirname(os.path.abspath(source)) if source else os.getcwd()
    pm2 = is_pm2_file(source)
    found: list[str] = []
    tables, errors = _app_tables(doc, where, found if pm2 else None)
    defaults = app_defaults(doc, where, errors)
    errors.extend(host_errors(doc, where))
    found.extend(host_warnings(doc, where))
    specs: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(tables):
        app_where = f"{where}: apps[{index}]"
        try:
            table = {**defaults, **raw} if defaults and isinstance(raw, dict) else raw
            spec = normalize_app(table, where=app_where, base_dir=base_dir, env_name=env_name, source=source,
                                 pm2=pm2, warnings=found)
            if overrides and (not wanted or spec["name"] in wanted):
                spec = normalize_app(_with_overrides(table, overrides), where=app_where, base_dir=base_dir,
                                     env_name=env_name, source=source, pm2=pm2)
        except ConfigError as exc:
            errors.extend(exc.messages)
            continue
        name = spec["name"]
        if check_files and (not wanted or name in wanted):
            from corral.config.preflight import runnable_problems

            errors.extend(runnable_problems(spec, f'{app_where} "{name}"'))
        if name in seen:
            errors.append(
                f'{app_where} "{name}": name: {render(name)} is already used by apps[{seen[name]}]'
                " (names must be unique)"
            )
        seen.setdefault(name, index)
        specs.append(spec)
    if isinstance(doc, dict) and doc.get("jobs") is not None:
        import time

        from corral.config.jobs import load_jobs

        found_jobs = load_jobs(doc["jobs"], where, specs, base_dir, env_name, source, time.time(), errors)
        if check_files:
            from corral.config.preflight import runnable_problems

            for index, job in enumerate(found_jobs):
                errors.extend(runnable_problems(job["spec"], f'{where}: jobs[{index}] "{job["name"]}"'))
        if jobs is not None:
            jobs.extend(found_jobs)
    if errors:
        raise ConfigError(errors)
    if warnings is not None:
        warnings.extend(found)
    return specs


def _only_names(only: str | Iterable[str]) -> list[str]:
    parts = [only] if isinstance(only, str) else list(only)
    return [name.strip() for part in parts for name in part.split(",") if name.strip()]


def _select(specs: list[dict[str, Any]], only: str | Iterable[str], where: str) -> list[dict[str, Any]]:
    wanted = _only_names(only)
    known = [spec["name"] for spec in specs]
    missing = [name for name in wanted if name not in known]
    if missing:
        apps = ", ".join(render(name) for name in known)
        raise ConfigError(
            [f"{where}: only {render(name)}: no app by that name (apps in this file: {apps})" for name in missing]
        )
    return [spec for spec in specs if spec["name"] in wanted]


def check_overrides(overrides: dict[str, Any]) -> None:
    """Settings given as flags for the apps of a file: each must be a valid value (the message
    names the command line, not the file); ``name`` cannot apply to every app of a file."""
    errors = []
    for key, value in overrides.items():
        if key == "name":
            errors.append("command line: name: --name is for a script or a command "
                          "(with a file, pick apps with --only NAME)")
            continue
        try:
            FIELD_BY_NAME[key].convert(value)
        except Invalid as exc:
            shown = exc.value if exc.suffix else value
            errors.append(f"command line: {key}{exc.suffix}: "
                          + (f"{render(shown)} {exc.text}" if exc.show_value else exc.text))
    if errors:
        raise ConfigError(errors)


def load_file(
    path: str,
    *,
    env_name: str | None = None,
    only: str | Iterable[str] | None = None,
    overrides: dict[str, Any] | None = None,
    check_files: bool = False,
    warnings: list[str] | None = None,
    host: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Read an ecosystem file and return the normalized spec of each app.

    ``env_name`` merges each app's ``env_<env_name>`` block into ``env``;
    ``only`` keeps the named apps (a comma-separated string or a list);
    ``overrides`` (raw settings by field name, from ``corral start`` flags) replace
    those settings in every app, as PM2's flags do; ``check_files`` checks what the apps
    started name on this machine (:mod:`corral.config.preflight`: cwd, script, venv ...);
    ``host``, a dict, receives the file's daemon-wide settings as written (checked; only the keys
    it gives; the daemon converts them with :func:`corral.config.host.to_host`).
    Raises :class:`ConfigError` with every problem found.  A PM2 file (JavaScript or JSON) is
    read as PM2 reads it (:mod:`corral.config.pm2`); its warnings (keys ignored ...) are appended
    to ``warnings``, one line each.
    """
    if overrides:
        check_overrides(overrides)
    doc = read_document(path)
    wanted = _only_names(only) if only is not None else None
    jobs: list[dict[str, Any]] = []
    specs = _normalize_document(doc, where=path, source=path, env_name=env_name, overrides=overrides, wanted=wanted,
                                check_files=check_files, warnings=warnings, jobs=jobs)
    if only is not None and _only_names(only):
        specs = _select(specs, only, path)
    if host is not None and isinstance(doc, dict):
        host.update({key: doc[key] for key in HOST_KEYS if key in doc})  # as written: the daemon converts
        if "jobs" in doc:
            host["jobs"] = jobs  # normalized (corral.config.jobs): the daemon checks them again
    return specs


def ignored_warnings(path: str, specs: list[dict[str, Any]]) -> list[str]:
    """One line per app that gives PM2 keys corral does not implement yet."""
    return [f'{path}: app "{spec["name"]}": not supported yet, ignored: {", ".join(spec["ignored"])}'
            for spec in specs if spec["ignored"]]


def validate_file(path: str, check_files: bool = False, warnings: list[str] | None = None) -> list[str]:
    """Every problem in the file at ``path``, one line each; empty means valid.  ``check_files``:
    also what ``start`` needs of this machine (``corral validate`` does); a PM2 file's warnings
    go to ``warnings``."""
    try:
        load_file(path, check_files=check_files, warnings=warnings)
    except ConfigError as exc:
        return list(exc.messages)
    return []


def from_command_line(
    target: str | None,
    argv_after_dashdash: list[str],
    *,
    name: str | None = None,
    cwd: str,
    extra: dict[str, Any] | None = None,
    check_files: bool = False,
) -> dict[str, Any]:
    """The spec for ``corral start app.py --name N -- a b`` or ``corral start -- prog args``.

    With a ``target`` the arguments after ``--`` are the script's args;
    without one they are the whole command (``cmd``).  ``extra`` holds more
    raw settings from flags (``instances``, ``env`` ...), validated like a file's.
    A default name is sanitized; an explicit ``name`` must follow the name rule.
    """
    raw: dict[str, Any] = dict(extra or {})
    if target:
        raw["script"] = target
        if argv_after_dashdash:
            raw["args"] = list(argv_after_dashdash)
    elif argv_after_dashdash:
        raw["cmd"] = list(argv_after_dashdash)
    else:
        raise ConfigError(
            "command line: give a script or a command (corral start app.py, or corral start -- node server.js)"
        )
    if name is not None:
        raw["name"] = name
    spec = normalize_app(raw, where="command line", base_dir=cwd, env_name=None, source=None)
    if check_files:
        from corral.config.preflight import runnable_problems

        problems = runnable_problems(spec, "command line")
        if problems:
            raise ConfigError(problems)
    return spec
