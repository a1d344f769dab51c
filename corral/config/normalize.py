"""The normalizer: one raw app table in, the normalized spec out (every key present, JSON-ready).

The keys, converters and defaults are declared in :data:`corral.config.fields.FIELDS`;
:func:`normalize_app` applies them, then the cross-field rules (script or cmd, shell, a probe
with somewhere to connect, ...), collecting every problem into one :class:`ConfigError`.

Choices worth knowing:

* relative paths (``script``, ``venv``, ``env_file``, ``out_file``,
  ``error_file``, an ``interpreter`` containing ``/``) resolve against the
  app's ``cwd``, which resolves against ``base_dir``; symlinks are kept (a
  deploy's ``current`` link must not be pinned); a bare ``script`` name that
  is not a file in ``cwd`` is looked up on PATH, as PM2 does (``script: "npm"``);
* ``shell = true`` takes ``cmd`` as a one-element list, or ``script`` as a shell
  command line kept verbatim (``args`` are appended shell-quoted);
* a ``null`` value means "not set"; ``env_file`` is corral's key, not an
  ``env_<name>`` block;
* an app of a PM2 file (``pm2=True``) is read as PM2 reads it (:mod:`corral.config.pm2`):
  unknown keys and disagreeing aliases are warnings, SIGINT is the default stop signal, the
  interpreter follows PM2's table of extensions.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from typing import Any

from corral.config.command import default_name
from corral.config.convert import Invalid, render, shown_key, to_env
from corral.config.errors import ConfigError
from corral.config.fields import FIELD_BY_KEY, FIELDS, PM2_IGNORED
from corral.config.pm2 import interpreter_for, log_target, unknown_key_warning

_PATH_FIELDS = ("venv", "env_file", "out_file", "error_file", "log_file")
_LOG_FIELDS = ("out_file", "error_file", "log_file")
#: PM2 keys whose value is PM2's default: accepted without a word.
_PM2_DEFAULTS = {"exec_mode": ("fork", "fork_mode")}


def _suggest(key: str) -> str:
    candidates = [*FIELD_BY_KEY, *PM2_IGNORED, "env_production"]
    import difflib  # only on errors

    close = difflib.get_close_matches(key, candidates, n=1, cutoff=0.75)
    if close:
        return f'unknown key (did you mean "{close[0]}"?)'
    known = ", ".join(field.name for field in FIELDS)
    return f"unknown key (app keys: {known}, env_<name>)"


class _Collector:
    """Converted values and messages for one app."""

    def __init__(self, label: str, pm2: bool = False) -> None:
        self.label = label
        self.pm2 = pm2
        self.warnings: list[str] = []
        self.errors: list[str] = []
        self.values: dict[str, Any] = {}
        self.given: dict[str, str] = {}  # field name -> key as written
        self.env_blocks: dict[str, dict[str, str]] = {}
        self.ignored: list[str] = []
        self.raw: Mapping[str, Any] = {}

    def error(self, key: str, text: str) -> None:
        key = shown_key(key)
        self.errors.append(f"{self.label}: {key}: {text}" if key else f"{self.label}: {text}")

    def warn(self, key: str, text: str) -> None:
        self.warnings.append(f"{self.label}: {shown_key(key)}: {text}")

    def invalid(self, key: str, value: Any, exc: Invalid) -> None:
        shown = exc.value if exc.suffix else value
        shown_text = f"{render(shown)} {exc.text}" if exc.show_value else exc.text
        self.error(key + exc.suffix, shown_text)

    def take(self, key: str, value: Any) -> None:
        if key in PM2_IGNORED:
            if value not in _PM2_DEFAULTS.get(key, ()):
                self.ignored.append(key)
            return
        # PM2 reads cmd: "app.py" as the script
        field = FIELD_BY_KEY.get("script" if self.pm2 and key == "cmd" and isinstance(value, str) else key)
        if field is None and key.startswith("env_") and len(key) > 4:
            try:
                self.env_blocks[key[4:]] = to_env(value) if value is not None else {}
            except Invalid as exc:
                self.invalid(key, value, exc)
            return
        if field is None:
            if self.pm2:
                self.warn(key, unknown_key_warning(key, value, [*FIELD_BY_KEY, *PM2_IGNORED]))
            else:
                self.error(key, _suggest(key))
            return
        if field.name in self.given:
            self._again(key, field.name, field.convert, value)
            return
        if value is None:
            return
        self.given[field.name] = key
        try:
            self.values[field.name] = field.convert(value)
        except Invalid as exc:
            self.invalid(key, value, exc)

    def _again(self, key: str, name: str, convert: Any, value: Any) -> None:
        """A second spelling of a setting already given: an error in corral's files; in a PM2
        file nothing when both agree, else one warning (the setting's own name wins)."""
        first = self.given[name]
        if not self.pm2:
            self.error(key, f'same setting as "{first}" (give only one)')
            return
        if value is None:
            return
        try:
            converted = convert(value)
        except Invalid as exc:
            self.invalid(key, value, exc)
            return
        if converted == self.values.get(name):
            return
        dropped, kept = key, first
        if key == name:  # its own name wins over an alias given first
            dropped, kept = first, key
            self.given[name] = key
            self.values[name] = converted
        self.warn(dropped, f'{render(self.raw.get(dropped))} ignored: "{kept}" is the same setting and is used '
                           "(give one of them)")


def _abspath(path: str, base: str) -> str:
    return os.path.normpath(os.path.join(base, os.path.expanduser(path)))


def _script_path(script: str, cwd: str) -> str:
    """``script`` against ``cwd``; a bare name that is no file there is looked up on PATH (PM2's
    ``script: "npm"``)."""
    path = _abspath(script, cwd)
    if "/" not in script and not os.path.exists(path):
        import shutil

        found = shutil.which(script)
        if found:
            return os.path.abspath(found)
    return path


def _check_command(c: _Collector) -> None:
    """Cross-field rules about script/cmd/shell (values that failed to convert are skipped)."""
    given, values = c.given, c.values
    if "script" not in given and "cmd" not in given:
        c.error("", 'one of "script" or "cmd" is required')
    elif "script" in given and "cmd" in given:
        c.error("", 'give either "script" or "cmd", not both (cmd is a full argv list)')
    elif "cmd" in given:
        for other in ("args", "interpreter", "interpreter_args"):
            if other in given:
                c.error(given[other], 'not used with "cmd" (put it in the cmd list)')
        if values.get("shell") and "cmd" in values and len(values["cmd"]) != 1:
            hint = 'must be one command line when shell = true (like ["npm start | tee out.log"])'
            c.error(given["cmd"], f'{render(values["cmd"])} {hint}')
    elif values.get("shell"):
        for other in ("interpreter", "interpreter_args"):
            if other in given:
                c.error(given[other], "not used when shell = true (the command line runs with /bin/sh -c)")


def _check_readiness(c: _Collector) -> None:
    """Cross-field rules about readiness (values that failed to convert are skipped).

    An http/tcp probe connects to its own ``port``/``address`` or else to the app's first
    ``listen`` socket: with neither it could never pass, and the app would fail forever.
    ``wait_ready`` is ``ready = "notify"``: together with a probe, one of them would be ignored.
    """
    given, values = c.given, c.values
    ready = values.get("ready")
    if ready is None:
        return
    kind = ready["kind"]
    a_probe = f"{'an' if kind == 'http' else 'a'} {kind} probe"
    no_listen = not values.get("listen") and not ("listen" in given and "listen" not in values)
    if kind in ("http", "tcp") and not ready.get("port") and not ready.get("address") and no_listen:
        probe = '{ http = "/healthz", port = 8000 }' if kind == "http" else '{ tcp = "127.0.0.1:8000" }'
        c.error(given["ready"], f"{a_probe} needs somewhere to connect: the app has no listen "
                                f'(add listen = "tcp://127.0.0.1:8000", or give the probe a port: {probe})')
    if values.get("wait_ready") and kind != "notify":
        c.error(given["wait_ready"], f'true waits for READY=1, but ready is {a_probe} (keep one; '
                                     f'wait_ready = true is ready = "notify")')


def _check_increment(c: _Collector) -> None:
    """``increment_var`` adds the instance number to a variable: a value given in ``env`` (or an
    ``env_<name>`` block) must be a whole number.  Values are never shown (they may be secrets)."""
    var = c.values.get("increment_var")
    if var is None:
        return
    blocks = [("env", c.values.get("env") or {})] + [(f"env_{n}", b) for n, b in c.env_blocks.items()]
    for block, env in blocks:
        if var in env:
            try:
                int(env[var])
            except ValueError:
                c.error(c.given["increment_var"], f"{block}.{var} is not a whole number "
                                                  "(the instance number is added to it)")


def _check_spec(c: _Collector, spec: dict[str, Any]) -> None:
    """Rules that need the finished spec (the default name)."""
    if spec["name"] in spec["depends_on"]:
        c.error(c.given["depends_on"], f"{render(spec['name'])} is this app itself "
                                       "(list the apps that must be ready before it starts)")


def _pm2_defaults(c: _Collector, spec: dict[str, Any]) -> None:
    """What PM2 does when its file says nothing: SIGINT to stop, the interpreter by extension."""
    if "stop_signal" not in c.given:
        spec["stop_signal"] = "SIGINT"
    if spec["script"] and not spec["shell"] and "interpreter" not in c.given:
        interpreter, args = interpreter_for(spec["script"], spec["venv"], bool(spec["interpreter_args"]))
        if interpreter is not None:
            spec["interpreter"] = interpreter
            spec["interpreter_args"] = [*args, *spec["interpreter_args"]]


def _finish(c: _Collector, base_dir: str, env_name: str | None, source: str | None) -> dict[str, Any]:
    spec: dict[str, Any] = {f.name: copy.deepcopy(c.values.get(f.name, f.default)) for f in FIELDS}
    base = os.path.abspath(base_dir)
    cwd = _abspath(spec["cwd"], base) if spec["cwd"] else base
    spec["cwd"] = cwd
    for key in _LOG_FIELDS:
        if isinstance(spec[key], str):
            spec[key] = log_target(spec[key])
    for key in _PATH_FIELDS:
        if isinstance(spec[key], str) and spec[key]:
            spec[key] = _abspath(spec[key], cwd)
    spec["watch"] = [_abspath(path, cwd) for path in spec["watch"]]
    if spec["script"] and not spec["shell"]:
        spec["script"] = _script_path(spec["script"], cwd)
    if c.pm2:
        _pm2_defaults(c, spec)
    interpreter = spec["interpreter"]
    if interpreter and ("/" in interpreter or interpreter.startswith("~")):
        spec["interpreter"] = _abspath(interpreter, cwd)
    if env_name is not None:
        spec["env"].update(c.env_blocks.get(env_name, {}))
    if spec["name"] is None:
        spec["name"] = default_name(spec["script"], spec["cmd"], spec["shell"])
    spec["source"] = os.path.abspath(source) if source else None
    spec["env_name"] = env_name
    spec["ignored"] = list(c.ignored)
    return spec


def normalize_app(
    raw: Mapping[str, Any],
    *,
    where: str,
    base_dir: str,
    env_name: str | None = None,
    source: str | None = None,
    pm2: bool = False,
    warnings: list[str] | None = None,
) -> dict[str, Any]:
    """Validate one raw app table and return its normalized spec.

    ``where`` prefixes every message (e.g. ``corral.toml: apps[1]``); the app's
    name is appended when the table gives one.  Raises :class:`ConfigError`
    with every problem found.  ``pm2``: the table comes from a PM2 file (read as PM2 reads
    it; its warnings are appended to ``warnings``).
    """
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: {render(raw)} is not an app (use a table of settings with a script or cmd)")
    name = raw.get("name")
    c = _Collector(f"{where} {render(name)}" if isinstance(name, str) and name else where, pm2)
    c.raw = raw
    for key, value in raw.items():
        c.take(str(key), value)
    _check_command(c)
    _check_readiness(c)
    _check_increment(c)
    if c.errors:
        raise ConfigError(c.errors)
    spec = _finish(c, base_dir, env_name, source)
    _check_spec(c, spec)
    if not c.errors:
        from corral.config.speccheck import spec_problem  # the daemon's own check: what passes here, passes there

        problem = spec_problem(spec)
        if problem is not None:
            c.error("", problem)
    if c.errors:
        raise ConfigError(c.errors)
    if warnings is not None:
        warnings.extend(c.warnings)
    return spec
