"""The app schema: every per-app key, declared once as data, and its normalizer.

:data:`FIELDS` lists corral's app settings (name, converter, default, doc and
PM2 aliases); :data:`PM2_IGNORED` lists the keys PM2 knows that corral accepts
but does not implement yet.  :func:`normalize_app` turns one raw app table
into the normalized spec the daemon stores (every key present, JSON-ready),
collecting every problem into one :class:`ConfigError`.  The converters
themselves live in :mod:`corral.config.convert`.

Choices worth knowing:

* relative paths (``script``, ``venv``, ``env_file``, ``out_file``,
  ``error_file``, an ``interpreter`` containing ``/``) resolve against the
  app's ``cwd``, which resolves against ``base_dir``; symlinks are kept (a
  deploy's ``current`` link must not be pinned); a bare ``script`` name that
  is not a file in ``cwd`` is looked up on PATH, as PM2 does (``script: "npm"``);
* ``shell = true`` takes ``cmd`` as a one-element list, or ``script`` as a shell
  command line kept verbatim (``args`` are appended shell-quoted);
* a ``null`` value means "not set"; ``env_file`` is corral's key, not an
  ``env_<name>`` block.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from corral.config.command import default_name
from corral.config.cluster import to_depends, to_env_name, to_listen, to_ready, to_reload_mode
from corral.config.convert import (
    Invalid,
    render,
    to_account,
    to_args,
    to_bool,
    to_cmd,
    to_count,
    to_duration,
    to_env,
    to_exit_codes,
    to_instances,
    to_name,
    to_path,
    to_restart_policy,
    to_signal,
)
from corral.config.errors import ConfigError
from corral.config.logkeys import (
    to_date_format,
    to_key_list,
    to_line_limit,
    to_log_type,
    to_max_age,
    to_patterns,
    to_retain,
    to_rotate_size,
    to_schedule,
)


class Field(NamedTuple):
    """One app setting: canonical name, converter, default, doc and PM2 aliases."""

    name: str
    convert: Callable[[Any], Any]
    default: Any
    doc: str
    aliases: tuple[str, ...] = ()


# --- the schema -----------------------------------------------------------------

FIELDS: tuple[Field, ...] = (
    Field("name", to_name, None, "App name; defaults to the script's basename without extension."),
    Field("namespace", to_name, "default", "Group name usable as a target (PM2 namespace)."),
    Field("script", to_path, None, "Program to run; interpreter chosen by extension.", ("exec",)),
    Field("cmd", to_cmd, None, "Argv list to exec instead of script + args (corral)."),
    Field("args", to_args, [], "Arguments for script: a list, or a string split like a shell."),
    Field("interpreter", to_path, None, 'Interpreter for script; "none" execs it directly.', ("exec_interpreter",)),
    Field(
        "interpreter_args", to_args, [], "Arguments between interpreter and script.", ("node_args", "interpreterArgs")
    ),
    Field("venv", to_path, None, "Virtualenv whose python (and cmd programs) run the app (corral)."),
    Field("cwd", to_path, None, "Working directory; defaults to the config file's folder."),
    Field("instances", to_instances, 1, 'Number of instances: N, "max"/0 (one per CPU), -1 (one less).'),
    Field("env", to_env, {}, "Environment variables; env_<name> blocks merge in with --env <name>."),
    Field("env_file", to_path, None, ".env file read at every spawn (corral)."),
    Field("autorestart", to_restart_policy, "always", 'Restart policy: "always" (true), "on-failure", "never" (false).'),
    Field("min_uptime", to_duration, 1.0, "Uptime after which a start counts as stable."),
    Field("max_restarts", to_count, None, "Consecutive fast failures before errored; unset = never give up."),
    Field("restart_delay", to_duration, 0.0, "Fixed delay before each restart."),
    Field("exp_backoff_restart_delay", to_duration, 0.1, "First backoff delay after a fast failure."),
    Field("kill_timeout", to_duration, 5.0, "Grace period after the stop signal before SIGKILL."),
    Field("stop_signal", to_signal, "SIGTERM", "Signal sent to stop the app (corral)."),
    Field("stop_exit_codes", to_exit_codes, [], "Exit codes that never trigger a restart."),
    Field("out_file", to_path, None, "File for stdout.", ("out", "output", "out_log")),
    Field("error_file", to_path, None, "File for stderr.", ("error", "err", "err_file", "err_log")),
    Field("merge_logs", to_bool, False, "One log file for all instances.", ("combine_logs",)),
    Field("log_type", to_log_type, "raw", 'Log line format: "raw" (timestamp prefix) or "json".'),
    Field("log_date_format", to_date_format, None, "Timestamp format (moment.js or strftime); default ISO 8601."),
    Field("time", to_bool, True, "Prefix every log line with a timestamp."),
    Field("log_max_line", to_line_limit, 64 * 1024, "Longer lines are split (never dropped)."),
    Field("log_max_size", to_rotate_size, 10 * 1024 * 1024, "Rotate a log file at this size; 0 = never."),
    Field("log_rotate", to_schedule, None, 'Also rotate on a schedule: "daily", "hourly" or cron.'),
    Field("log_retain", to_retain, 10, 'Rotated files kept per log ("all" keeps every one).'),
    Field("log_max_age", to_max_age, None, 'Delete rotated files older than this ("14d").'),
    Field("log_compress", to_bool, False, "Gzip rotated log files."),
    Field("redact", to_bool, True, "Hide secrets (passwords, tokens, card numbers) in logs."),
    Field("redact_keys", to_key_list, [], "More key names whose values are hidden in logs."),
    Field("redact_patterns", to_patterns, [], "More regular expressions hidden in logs (group 1 if any)."),
    Field("shell", to_bool, False, "Run through /bin/sh -c (corral; off by default)."),
    Field("user", to_account, None, "Run as this user (when corral runs as root).", ("uid",)),
    Field("group", to_account, None, "Run with this group (when corral runs as root).", ("gid",)),
    # cluster mode: shared sockets, readiness, reload (corral.config.cluster)
    Field("listen", to_listen, [], 'Sockets the daemon binds and hands to every instance (LISTEN_FDS).'),
    Field("ready", to_ready, None, 'Readiness: "notify" or a probe { http = "/healthz" } / { tcp = true } / { cmd }.'),
    Field("wait_ready", to_bool, False, "PM2's flag: wait for READY=1 on NOTIFY_SOCKET (same as ready = \"notify\")."),
    Field("listen_timeout", to_duration, 3.0, "With no readiness signal: ready once up this long."),
    Field("ready_timeout", to_duration, 30.0, "An instance not ready by then has failed to start."),
    Field("increment_var", to_env_name, None, "Env var (like PORT) increased by the instance number."),
    Field("watchdog", to_duration, None, "Restart an instance silent this long after a first WATCHDOG=1."),
    Field("depends_on", to_depends, [], "Apps that must be ready before this one starts."),
    Field("reload", to_reload_mode, "rolling", '"rolling" (start new, wait ready, stop old) or "restart".'),
)

#: Keys of PM2's ecosystem schema that corral accepts but does not implement yet.
#: A later issue that implements one moves it from here into FIELDS.
PM2_IGNORED: frozenset[str] = frozenset(
    {
        # identity and environment
        "name_prefix", "filter_env", "append_env_to_name", "install_url", "execute_command", "force",
        "username", "port",
        # mode and instances
        "exec_mode", "instance_var",
        # start, stop, restart
        "autostart", "shutdown_with_message", "treekill",
        "kill_retry_time", "max_memory_restart", "cron_restart", "cron",
        # watch
        "watch", "ignore_watch", "watch_delay", "watch_options",
        # logs
        "log_file", "log", "disable_logs", "pid_file", "pid",
        # Node runtime, monitoring and PM2 services
        "source_map_support", "disable_source_map_support", "vizion", "pmx", "automation", "trace",
        "disable_trace", "v8", "event_loop_inspector", "deep_monitoring", "io", "post_update",
        "write", "windowsHide",
    }
)

#: Spec keys that are not user settings.
EXTRA_KEYS: tuple[str, ...] = ("source", "env_name", "ignored")
SPEC_KEYS: tuple[str, ...] = tuple(field.name for field in FIELDS) + EXTRA_KEYS
FIELD_BY_KEY: dict[str, Field] = {
    key: field for field in FIELDS for key in (field.name, *field.aliases)
}
_PATH_FIELDS = ("venv", "env_file", "out_file", "error_file")


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

    def __init__(self, label: str) -> None:
        self.label = label
        self.errors: list[str] = []
        self.values: dict[str, Any] = {}
        self.given: dict[str, str] = {}  # field name -> key as written
        self.env_blocks: dict[str, dict[str, str]] = {}
        self.ignored: list[str] = []

    def error(self, key: str, text: str) -> None:
        self.errors.append(f"{self.label}: {key}: {text}" if key else f"{self.label}: {text}")

    def invalid(self, key: str, value: Any, exc: Invalid) -> None:
        shown = exc.value if exc.suffix else value
        shown_text = f"{render(shown)} {exc.text}" if exc.show_value else exc.text
        self.error(key + exc.suffix, shown_text)

    def take(self, key: str, value: Any) -> None:
        if key in PM2_IGNORED:
            self.ignored.append(key)
            return
        field = FIELD_BY_KEY.get(key)
        if field is None and key.startswith("env_") and len(key) > 4:
            try:
                self.env_blocks[key[4:]] = to_env(value) if value is not None else {}
            except Invalid as exc:
                self.invalid(key, value, exc)
            return
        if field is None:
            self.error(key, _suggest(key))
            return
        if field.name in self.given:
            self.error(key, f'same setting as "{self.given[field.name]}" (give only one)')
            return
        if value is None:
            return
        self.given[field.name] = key
        try:
            self.values[field.name] = field.convert(value)
        except Invalid as exc:
            self.invalid(key, value, exc)


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


def _finish(c: _Collector, base_dir: str, env_name: str | None, source: str | None) -> dict[str, Any]:
    spec: dict[str, Any] = {f.name: copy.deepcopy(c.values.get(f.name, f.default)) for f in FIELDS}
    base = os.path.abspath(base_dir)
    cwd = _abspath(spec["cwd"], base) if spec["cwd"] else base
    spec["cwd"] = cwd
    for key in _PATH_FIELDS:
        if spec[key]:
            spec[key] = _abspath(spec[key], cwd)
    if spec["script"] and not spec["shell"]:
        spec["script"] = _script_path(spec["script"], cwd)
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
) -> dict[str, Any]:
    """Validate one raw app table and return its normalized spec.

    ``where`` prefixes every message (e.g. ``corral.toml: apps[1]``); the app's
    name is appended when the table gives one.  Raises :class:`ConfigError`
    with every problem found.
    """
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: {render(raw)} is not an app (use a table of settings with a script or cmd)")
    name = raw.get("name")
    c = _Collector(f'{where} "{name}"' if isinstance(name, str) and name else where)
    for key, value in raw.items():
        c.take(str(key), value)
    _check_command(c)
    if c.errors:
        raise ConfigError(c.errors)
    return _finish(c, base_dir, env_name, source)


def field_docs() -> list[tuple[str, str, str]]:
    """(key, default as JSON, doc) for every field, for help output."""
    return [(f.name, render(f.default), f.doc) for f in FIELDS]
