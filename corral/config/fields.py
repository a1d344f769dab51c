"""Every per-app setting, declared once as data.

A :class:`Field` says everything corral knows about one key: how a raw value is converted
(:mod:`corral.config.convert`), its default, its PM2 aliases, its Python type, its
``corral start`` flag and how the README documents it.  From :data:`FIELDS` come:

* the normalizer (:mod:`corral.config.normalize`): unknown keys, aliases, defaults;
* the typed :class:`corral.config.spec.AppSpec` (its attribute block is generated);
* the ``corral start`` flags (:mod:`corral.config.flags`, generated);
* the README's key table and flag table (generated).

``python -m corral.config.docs --write`` regenerates the three generated parts after a change
here; a test fails while any of them is out of date.  Defaults live here only.

:data:`PM2_IGNORED` lists the keys PM2 knows that corral accepts but does not implement yet.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from corral.config.rlimits import to_limits
from corral.config.cluster import to_depends, to_env_name, to_exec_mode, to_listen, to_health, to_ready, to_reload_mode
from corral.config.convert import (
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
from corral.config.environ import to_env_inherit
from corral.config.pm2 import to_ignore_watch, to_log_file, to_watch
from corral.config.host import to_app_thresholds, to_memory_limit
from corral.config.jobs import to_cron
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
    """One app setting.

    ``type`` is the annotation of the :class:`~corral.config.spec.AppSpec` attribute (a type
    without ``None`` and a ``None`` default make a required attribute, filled by the normalizer).
    ``flag`` holds the ``corral start`` options (a ``bool`` field also gets ``--no-...``; an
    option starting with ``--no-`` gives false); ``flag_kind`` is ``"append"`` for a repeatable
    option.  The README key table shows ``shown`` (the default, as users write it) and
    ``meaning``; ``table`` is ``"row"`` (a row of its own), ``"+"`` (in the previous row) or
    ``""`` (documented in the README's prose instead); ``label`` replaces the row's key cell.
    """

    name: str
    convert: Callable[[Any], Any]
    default: Any
    type: str
    doc: str
    aliases: tuple[str, ...] = ()
    flag: tuple[str, ...] = ()
    flag_kind: str = ""
    table: str = "row"
    shown: str = ""
    meaning: str = ""
    label: str = ""


# --- the declaration ------------------------------------------------------------------------

FIELDS: tuple[Field, ...] = (
    Field("name", to_name, None, "str", "name of the app (default: the script's name)",
          flag=("-n", "--name"), shown="file name", meaning="letters, digits, `_ . -`; not all digits, not `all`"),
    Field("namespace", to_name, "default", "str", "a group name usable as a target",
          flag=("--namespace",), shown="`default`", meaning="a group name usable as a target"),
    Field("script", to_path, None, "str | None", "program to run; the interpreter is chosen by its extension",
          aliases=("exec",), shown="—", label="`script` / `cmd`",
          meaning="exactly one: a script path (with `args`), or an argv list"),
    Field("cmd", to_cmd, None, "list[str] | None", "argv list to exec instead of script + args", table="+"),
    Field("args", to_args, [], "list[str]", "arguments for script: a list, or a string split like a shell",
          meaning="as in PM2 (`node_args`, `exec_interpreter` accepted)"),
    Field("interpreter", to_path, None, "str | None", 'interpreter for the script ("none": exec it directly)',
          aliases=("exec_interpreter",), flag=("--interpreter",), table="+"),
    Field("interpreter_args", to_args, [], "list[str]", "arguments between the interpreter and the script",
          aliases=("node_args", "interpreterArgs"), flag=("--interpreter-args", "--node-args"), table="+"),
    Field("venv", to_path, None, "str | None", "a virtualenv whose bin/ provides python and cmd[0]",
          flag=("--venv",), meaning="a virtualenv whose `bin/` provides python and `cmd[0]`"),
    Field("cwd", to_path, None, "str", "working directory (default: the file's folder, or here)",
          flag=("--cwd",), shown="the file's folder",
          meaning="working directory; relative paths in the app resolve against it"),
    Field("instances", to_instances, 1, "int", 'number of instances: N, "max" (one per CPU), 0 or -1',
          flag=("-i", "--instances"), shown="1", meaning='a number, `"max"` (CPU count), or PM2\'s 0 / -1'),
    Field("env", to_env, {}, "dict[str, str]", "environment variables; env_<name> merges in with --env <name>",
          label="`env`, `env_<name>`, `env_file`",
          meaning="environment; `--env NAME` merges `env_NAME` over `env`"),
    Field("env_file", to_path, None, "str | None", ".env file read at every start",
          flag=("--env-file",), table="+"),
    Field("env_inherit", to_env_inherit, [], "list[str]",
          "secret variables of the starting shell the app keeps (names or patterns like AWS_*)",
          flag=("--env-inherit",), flag_kind="append", shown="none",
          meaning='variables of the shell that ran `corral start` whose names look secret (`GITHUB_TOKEN`, '
                  '`*_PASSWORD` ...) are not passed on unless listed here: `["AWS_*", "GITHUB_TOKEN"]` '
                  '(see [Environment](#how-it-behaves))'),
    Field("autorestart", to_restart_policy, "always", 'Literal["always", "on-failure", "never"]',
          'restart policy: true (always), false (never) or "on-failure"', flag=("--no-autorestart",),
          shown="`true`", meaning='`true`, `false`, `"on-failure"`'),
    Field("min_uptime", to_duration, 1.0, "float", "a shorter run counts as a failure",
          shown="`1s`", meaning="runs shorter than this are failures"),
    Field("max_restarts", to_count, None, "int | None", 'consecutive failures before "errored"',
          flag=("--max-restarts",), shown="unlimited", meaning="consecutive failures before `errored`"),
    Field("restart_delay", to_duration, 0.0, "float", "added to every restart",
          flag=("--restart-delay",), shown="0", meaning="added to every restart"),
    Field("exp_backoff_restart_delay", to_duration, 0.1, "float", "base of the backoff after fast failures",
          flag=("--exp-backoff-restart-delay",), shown="`100ms`",
          meaning="base of the backoff (doubles per failure, capped at 15 s)"),
    Field("kill_timeout", to_duration, 5.0, "float", "graceful budget before SIGKILL to the group",
          flag=("-k", "--kill-timeout"), shown="`5s`", meaning="graceful budget before SIGKILL to the group"),
    Field("stop_signal", to_signal, "SIGTERM", "str", "the graceful signal (a PM2 file's default: SIGINT)",
          aliases=("kill_signal",), flag=("--stop-signal",), shown="`SIGTERM`",
          meaning="the graceful signal (`kill_signal` accepted); a PM2 file's apps get `SIGINT`, as PM2 sends"),
    Field("stop_exit_codes", to_exit_codes, [], "list[int]", "exit codes that are not restarted",
          flag=("--stop-exit-codes",), shown="none", meaning="exit codes that are not restarted"),
    Field("out_file", to_path, None, "str | None", "file for stdout",
          aliases=("out", "output", "out_log"), flag=("-o", "--output"),
          label="`out_file`, `error_file`, `merge_logs`, `log_file`",
          meaning='as in PM2: `"/dev/null"` or `"NULL"` discards; `log_file` gets both streams in one more file '
                  '(`true`: `logs/<name>.log`)'),
    Field("error_file", to_path, None, "str | None", "file for stderr",
          aliases=("error", "err", "err_file", "err_log"), flag=("-e", "--error"), table="+"),
    Field("merge_logs", to_bool, False, "bool", "one log file for all instances",
          aliases=("combine_logs",), flag=("--merge-logs",), table="+"),
    Field("log_file", to_log_file, None, "bool | str | None",
          "also write stdout and stderr to one file (true: logs/<name>.log)", aliases=("log",), table="+"),
    Field("log_type", to_log_type, "raw", 'Literal["raw", "json"]', 'log lines: "raw" or "json"',
          flag=("--log-type",), shown='`"raw"`',
          meaning='`"json"`: one JSON object per line (`ts`, `app`, `instance`, `stream`, `message`)'),
    Field("log_date_format", to_date_format, None, "str | None", "timestamp format (moment.js or strftime)",
          flag=("--log-date-format",), shown="ISO 8601",
          meaning='the timestamp: a moment.js format as in PM2 (`"YYYY-MM-DD HH:mm:ss Z"`) '
                  'or strftime (`"%d/%m %H:%M:%S"`)'),
    Field("time", to_bool, True, "bool", "prefix every log line with a timestamp",
          flag=("--time",), shown="`true`",
          meaning="prefix every log line with a timestamp (`false`: lines as written)"),
    Field("log_max_line", to_line_limit, 64 * 1024, "int", "longer lines are split (never dropped)",
          shown="`64K`", meaning="longer lines are split into pieces of this size (never dropped)"),
    Field("log_max_size", to_rotate_size, 10 * 1024 * 1024, "int", "rotate a log file at this size; 0 = never",
          shown="`10MB`", meaning="rotate a log file before it grows past this; `0` = no size limit"),
    Field("log_rotate", to_schedule, None, "str | None", 'also rotate on a schedule: "daily", "hourly" or cron',
          shown="none", meaning='also rotate on a schedule: `"hourly"`, `"daily"`, `"weekly"`, `"monthly"` '
                                'or cron (`"0 3 * * *"`, local time)'),
    Field("log_retain", to_retain, 10, "int | None", 'rotated files kept per log ("all": every one)',
          shown="`10`", meaning='rotated files kept per log file; `"all"` keeps every one'),
    Field("log_max_age", to_max_age, None, "float | None", 'delete rotated files older than this ("14d")',
          shown="none", meaning='also delete rotated files older than this (`"14d"`)'),
    Field("log_compress", to_bool, False, "bool", "gzip rotated log files",
          shown="`false`", meaning="gzip rotated files (on a background thread)"),
    Field("redact", to_bool, True, "bool", "hide secrets (passwords, tokens, card numbers) in logs",
          shown="`true`", meaning="hide secrets in log lines (see [Logs](#logs-and-crash-reports))"),
    Field("redact_keys", to_key_list, [], "list[str]", "more key names whose values are hidden in logs",
          meaning='more key names (`["ssn"]`) and regular expressions (group 1, if any, is what is hidden)'),
    Field("redact_patterns", to_patterns, [], "list[str]", "more regular expressions hidden in logs",
          table="+"),
    Field("shell", to_bool, False, "bool", "run through /bin/sh -c",
          flag=("--shell",), shown="`false`", meaning="run `cmd[0]` (or `script`) through `/bin/sh -c`"),
    Field("user", to_account, None, "str | None", "run as this user (daemon running as root)",
          aliases=("uid",), flag=("--user", "--uid"), meaning="run as another user (daemon running as root)"),
    Field("group", to_account, None, "str | None", "run with this group (daemon running as root)",
          aliases=("gid",), flag=("--group", "--gid"), table="+"),
    Field("limits", to_limits, {}, "dict[str, list[int | None]]",
          'resource limits: { nofile = 65536, core = "unlimited" } (setrlimit; prlimit(1) names)',
          shown="core 0, others inherited",
          meaning='resource limits set before the program runs: `{ nofile = 65536, core = "unlimited" }` '
                  '(see [How it behaves](#how-it-behaves))'),
    Field("watch", to_watch, [], "list[str]", "restart on file change: true (the cwd), a path or a list of paths",
          shown="`false`", label="`watch`, `ignore_watch`, `watch_delay`",
          meaning='restart when a file changes: `true` (the app\'s `cwd`) or paths; `ignore_watch` lists paths, '
                  'globs or regular expressions (default: dot files and `node_modules`); `watch_delay` waits '
                  'before the restart (see [Watch](#watch-and-restart))'),
    Field("ignore_watch", to_ignore_watch, None, "list[str] | None",
          "paths, globs or regular expressions whose changes are ignored", table="+"),
    Field("watch_delay", to_duration, 0.0, "float", "wait this long after a change before restarting",
          table="+"),
    # cluster mode: shared sockets, readiness, reload (corral.config.cluster); the README
    # documents these in its "Cluster mode" section
    Field("listen", to_listen, [], "list[str]", "a socket the daemon binds and hands to every instance",
          flag=("--listen",), flag_kind="append", table=""),
    Field("ready", to_ready, None, "dict[str, Any] | None",
          'readiness: "notify", or a probe { http = "/healthz" } / { tcp = true } / { cmd }', table=""),
    Field("wait_ready", to_bool, False, "bool", 'wait for READY=1 (same as ready = "notify")',
          flag=("--wait-ready",), table=""),
    Field("exec_mode", to_exec_mode, None, 'Literal["fork", "cluster"] | None',
          '"cluster": Node instances share the ports they listen on through corral; "fork": they do not',
          table=""),
    Field("shutdown_with_message", to_bool, False, "bool",
          "stop a Node app by sending it 'shutdown' on its IPC channel instead of a signal", table=""),
    Field("listen_timeout", to_duration, 3.0, "float", "with no readiness signal: ready once up this long",
          flag=("--listen-timeout",), table=""),
    Field("ready_timeout", to_duration, 30.0, "float", "an instance not ready by then has failed to start",
          table=""),
    Field("increment_var", to_env_name, None, "str | None", "env var (like PORT) increased by the instance number",
          table=""),
    Field("watchdog", to_duration, None, "float | None", "restart an instance silent this long after WATCHDOG=1",
          table=""),
    Field("depends_on", to_depends, [], "list[str]", "apps that must be ready before this one starts", table=""),
    Field("reload", to_reload_mode, "rolling", 'Literal["rolling", "restart"]',
          '"rolling" (start new, wait ready, stop old) or "restart"', table=""),
    Field("max_memory_restart", to_memory_limit, None, "int | None",
          "replace an instance whose process tree stays over this much memory (300M, 1G)",
          flag=("--max-memory-restart",), shown="", meaning="replace an instance whose process tree stays over "
          'this much memory for `samples` samples ("300M", "1G"): new instance first when it has a socket'),
    Field("cron_restart", to_cron, None, "str | None",
          'restart gracefully on a cron schedule ("0 3 * * *"; rolling when the app has a socket)',
          aliases=("cron",), flag=("-c", "--cron-restart", "--cron"), shown="",
          meaning='restart gracefully on a cron schedule (`"0 3 * * *"`, local time; 6 fields with seconds '
          "first, `@daily` ...): a reload as `reload` says, new instance first when it has a socket; "
          "shown in `corral jobs` as `restart:NAME`"),
    Field("heap_profile", to_bool, False, "bool", "trace allocations from the start (tracemalloc) for `profile heap`",
          shown="`false`", meaning="Python: start tracemalloc with the program (`PYTHONTRACEMALLOC=1`), so "
          "`corral profile heap` and automatic snapshots show every allocation; allocation-heavy code runs 2-4x "
          "slower and each live block costs some tens of bytes (see [Profiling](#profiling))"),
    Field("thresholds", to_app_thresholds, {}, "dict[str, Any]",
          "this app's alert thresholds: cpu (per instance tree), process_memory, samples, window", table=""),
    Field("health", to_health, None, "dict[str, Any] | None",
          'liveness: { http = "/healthz" } / { tcp = true } / { cmd }, interval, timeout, failures, start_period',
          table=""),
)

#: Keys of PM2's ecosystem schema that corral accepts but does not implement yet.
#: A later issue that implements one moves it from here into FIELDS.
PM2_IGNORED: frozenset[str] = frozenset(
    {
        # identity and environment
        "name_prefix", "filter_env", "append_env_to_name", "install_url", "execute_command", "force",
        "username", "port",
        # mode and instances
        "instance_var",
        # start, stop, restart
        "autostart", "treekill",
        "kill_retry_time",
        # watch
        "watch_options",
        # logs
        "disable_logs", "pid_file", "pid",
        # Node runtime, monitoring and PM2 services
        "source_map_support", "disable_source_map_support", "vizion", "pmx", "automation", "trace",
        "disable_trace", "v8", "event_loop_inspector", "deep_monitoring", "io", "post_update",
        "write", "windowsHide",
    }
)

#: Spec keys that are not user settings: the file an app came from, the ``--env`` it was read
#: with, and the PM2 keys it gave that corral ignores.
EXTRA_KEYS: tuple[str, ...] = ("source", "env_name", "ignored")
SPEC_KEYS: tuple[str, ...] = tuple(field.name for field in FIELDS) + EXTRA_KEYS
FIELD_BY_NAME: dict[str, Field] = {field.name: field for field in FIELDS}
FIELD_BY_KEY: dict[str, Field] = {
    key: field for field in FIELDS for key in (field.name, *field.aliases)
}


def field_docs() -> list[tuple[str, str, str]]:
    """(key, default as JSON, doc) for every field, for help output."""
    from corral.config.convert import render

    return [(f.name, render(f.default), f.doc) for f in FIELDS]


def __getattr__(name: str) -> Any:
    """``normalize_app`` lived here; it is :func:`corral.config.normalize.normalize_app` now."""
    if name == "normalize_app":
        from corral.config.normalize import normalize_app

        return normalize_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
