"""The daemon's check of a spec it receives: every value of the right type and within bounds.

The CLI normalizes a file through the converters (:mod:`corral.config.convert`: rich messages,
aliases, defaults); the daemon trusts none of that, because a raw-socket client, an old store row
or a hand-edited ``dump.json`` can hold anything.  :meth:`corral.config.spec.AppSpec.from_dict`
runs :func:`spec_problem` before it builds a spec, so nothing that fails here is stored, started
or recovered.  The bounds are those of :mod:`corral.config.limits`, shared with the converters, and
the normalizer runs this check too: what the CLI accepts, the daemon accepts.

Cheap on purpose (the daemon's memory budget): standard library modules the daemon loads anyway,
no converters.  A problem is one line, ``key: value what is accepted``.
"""

from __future__ import annotations

import json
import math
import re
import signal
from collections.abc import Callable, Mapping
from typing import Any

from corral.config import limits
from corral.config.addresses import parse_listen
from corral.config.command import is_valid_name

Check = Callable[[Any], "str | None"]


def _int(value: Any, low: int, high: int, hint: str = "") -> str | None:
    if not isinstance(value, int) or isinstance(value, bool):
        return f"is not a whole number{hint}"
    if not low <= value <= high:
        return f"is out of range (from {low} to {high}{hint})"
    return None


def _seconds(value: Any, low: float = 0.0, high: float = limits.MAX_DURATION) -> str | None:
    if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))):
        return "is not a duration in seconds (a finite number)"
    if not low <= value <= high:
        return f"is out of range (from {low:g} to {high:g} seconds)"
    return None


def _text(value: Any, limit: int = limits.MAX_STRING) -> str | None:
    if not isinstance(value, str):
        return "is not a string"
    if len(value) > limit:
        return f"is too long (at most {limit} characters)"
    return limits.text_problem(value)


def _path(value: Any) -> str | None:
    if not isinstance(value, str) or not value.startswith("/"):
        return "is not an absolute path"
    return limits.path_problem(value)


def _texts(value: Any, item: Check = _text, non_empty: bool = False) -> str | None:
    if not isinstance(value, list) or (non_empty and not value):
        return "is not a list" + (" (at least one item)" if non_empty else "")
    if len(value) > limits.MAX_LIST:
        return f"has too many items (at most {limits.MAX_LIST})"
    for position, one in enumerate(value):
        problem = item(one)
        if problem is not None:
            return f"[{position}] {problem}"
    return None


def _optional(check: Check) -> Check:
    return lambda value: None if value is None else check(value)


def _choice(*allowed: Any) -> Check:
    return lambda value: None if isinstance(value, (str, bool)) and value in allowed else \
        f"is not one of {', '.join(json.dumps(a) for a in allowed)}"


def _bool(value: Any) -> str | None:
    return None if isinstance(value, bool) else "is not true or false"


def _name(value: Any) -> str | None:
    return None if is_valid_name(value) else "is not a valid name (1-64 letters, digits, _ . -)"


def _env(value: Any) -> str | None:
    if not isinstance(value, dict):
        return "is not a table of variables"
    if len(value) > limits.MAX_ENV:
        return f"has too many variables (at most {limits.MAX_ENV})"
    for key, item in value.items():
        if not key or "=" in key or _text(key) is not None:
            return f"has a variable name that is not one ({json.dumps(key)[:80]})"
        if _text(item) is not None:  # values are never shown: they may be secrets
            return f"[{json.dumps(key)[:80]}] is not a string the OS can pass (no NUL)"
    return None


def _signal(value: Any) -> str | None:
    return None if isinstance(value, str) and value in signal.Signals.__members__ else \
        'is not a signal name (like "SIGTERM")'


def _listen(value: Any) -> str | None:
    problem = _text(value, limits.PATH_MAX)
    if problem is not None:
        return problem
    try:
        kind, _, where = parse_listen(value)
    except ValueError:
        return 'is not a listen address ("tcp://host:port" or "unix:/path")'
    if kind == "unix" and len(str(where).encode("utf-8", "surrogateescape")) > limits.MAX_SOCKET_PATH:
        return f"is a unix socket path longer than {limits.MAX_SOCKET_PATH} bytes"
    return None


def _date_format(value: Any) -> str | None:
    from corral.logs.format import check_date_format  # the daemon's log writer: loaded anyway

    problem = _text(value, 256)
    if problem is not None:
        return problem
    try:
        check_date_format(value)
    except ValueError:
        return "is not a date format"
    return None


def _schedule(value: Any) -> str | None:
    from corral.logs.rotation import parse_schedule  # what opening the app's logs would run

    problem = _text(value, 256)
    if problem is not None:
        return problem
    try:
        parse_schedule(value)
    except ValueError:
        return "is not a rotation schedule"
    return None


def _cron(value: Any) -> str | None:
    from corral.jobs.cron import normalize  # cronsim: loaded only for an app with cron_restart

    problem = _text(value, 256)
    if problem is not None:
        return problem
    try:
        normalize(value)
    except ValueError:
        return "is not a cron expression"
    return None


def _pattern(value: Any) -> str | None:
    problem = _text(value, 4096)
    if problem is not None:
        return problem
    try:
        re.compile(value)
    except (re.error, RecursionError, OverflowError, ValueError):
        return "is not a regular expression"
    return None


def _age(value: Any) -> str | None:
    return _seconds(value, 1e-9, limits.MAX_AGE)


def _ready(value: Any) -> str | None:
    if not isinstance(value, dict) or value.get("kind") not in ("notify", "http", "tcp", "cmd"):
        return 'is not a readiness setting (kind "notify", "http", "tcp" or "cmd")'
    if value["kind"] == "notify":
        return None
    checks: dict[str, Check] = {
        "interval": lambda v: _seconds(v, 0.01), "timeout": lambda v: _seconds(v, 0.01),
        "port": lambda v: _int(v, 1, 65535), "host": lambda v: _text(v, 255) or _printable(v),
        "path": lambda v: _text(v, 4096) or _printable(v) or (None if v.startswith("/") else "is not a path"),
        "status": lambda v: _int(v, 100, 599), "cmd": lambda v: _texts(v, non_empty=True),
        "address": _optional(_listen),
    }
    required = {"http": ("path", "status"), "cmd": ("cmd",), "tcp": ("address",)}[value["kind"]]
    for key in ("interval", "timeout", *required):
        if key not in value:
            return f"has no {key}"
    for key, item in value.items():
        problem = checks[key](item) if key in checks else None if key == "kind" else "is not a probe setting"
        if problem is not None:
            return f".{key} {problem}"
    return None


def _env_name(value: Any) -> bool:
    """The rule of ``increment_var`` (``corral.config.cluster.to_env_name``)."""
    return isinstance(value, str) and 0 < len(value) <= 256 and (value[0].isalpha() or value[0] == "_") \
        and all(c.isalnum() or c == "_" for c in value)


def _printable(value: str) -> str | None:
    return None if value.isprintable() else "has control characters"


def _instances(value: Any) -> str | None:
    ceiling = limits.max_instances()
    problem = _int(value, 1, ceiling)
    return None if problem is None else f"is not a number of instances ({limits.instances_hint(ceiling)})"


def _account(value: Any) -> str | None:
    return _text(value, limits.MAX_ACCOUNT) or (None if value.strip() else "is empty")


_DURATION: Check = _seconds
def _inherit_pattern(value: Any) -> str | None:
    from corral.config.environ import _PATTERN

    return _text(value, 256) or (None if _PATTERN.fullmatch(value) else "is not a variable name or pattern")


def _rlimits(value: Any) -> str | None:
    """``{name: [soft, hard]}`` as ``config.rlimits`` normalizes ``limits`` (None: unlimited)."""
    if not isinstance(value, dict) or len(value) > len(limits.RLIMITS):
        return "is not a table of limits"
    for name, pair in value.items():
        if name not in limits.RLIMITS:
            return f"{name!r} is not a limit corral knows"
        if not isinstance(pair, list) or len(pair) != 2:
            return f"{name}: is not a [soft, hard] pair"
        for item in pair:
            if item is not None and _int(item, 0, 2**63 - 1):
                return f"{name}: is not a limit (a number or unlimited)"
        soft, hard = pair
        if hard is not None and (soft is None or soft > hard):
            return f"{name}: has a soft limit above its hard limit"
    return None


def _health(value: Any) -> str | None:
    """A liveness probe as normalized (``config.cluster.to_health``): a probe plus failures, start_period."""
    if not isinstance(value, dict) or value.get("kind") == "notify":
        return 'is not a liveness setting (kind "http", "tcp" or "cmd")'
    problem = _int(value.get("failures"), 1, 100) if "failures" in value else "has no failures"
    if problem is not None:
        return problem if problem.startswith("has no") else f".failures {problem}"
    start = value.get("start_period")
    problem = _seconds(start, 0.0) if start is not None else "has no start_period"
    if problem is not None:
        return problem if problem.startswith("has no") else f".start_period {problem}"
    return _ready({k: v for k, v in value.items() if k not in ("failures", "start_period")})


def _thresholds(value: Any) -> str | None:
    """An app's thresholds as normalized (``config.host.to_app_thresholds``)."""
    if not isinstance(value, dict) or set(value) - {"cpu", "process_memory", "samples", "window"}:
        return "is not a table of thresholds (cpu, process_memory, samples, window)"
    cpu = value.get("cpu")
    if cpu is not None and (not isinstance(cpu, (int, float)) or isinstance(cpu, bool) or not 0 <= cpu <= 100):
        return "has a cpu threshold that is not a percentage"
    for key, low, high in (("process_memory", 1 << 20, 1 << 50), ("samples", 1, 100), ("window", 1, 100)):
        if value.get(key) is not None and _int(value[key], low, high) is not None:
            return f"has a {key} that is not a whole number from {low} to {high}"
    return None


CHECKS: dict[str, Check] = {
    "name": _name, "namespace": _name,
    "script": _optional(_text), "cmd": _optional(lambda v: _texts(v, non_empty=True)),
    "args": _texts, "interpreter": _optional(lambda v: _text(v, limits.PATH_MAX) or limits.path_problem(v)),
    "interpreter_args": _texts, "venv": _optional(_path), "cwd": _path, "instances": _instances,
    "env": _env, "env_file": _optional(_path), "env_inherit": lambda v: _texts(v, _inherit_pattern), "autorestart": _choice("always", "on-failure", "never"),
    "min_uptime": _DURATION, "max_restarts": _optional(lambda v: _int(v, 0, limits.MAX_COUNT)),
    "restart_delay": _DURATION, "exp_backoff_restart_delay": _DURATION, "kill_timeout": _DURATION,
    "stop_signal": _signal, "stop_exit_codes": lambda v: _texts(v, lambda c: _int(c, 0, 255)),
    "out_file": _optional(_path), "error_file": _optional(_path), "merge_logs": _bool,
    "log_file": _optional(lambda v: None if v is True else _path(v)),
    "watch": lambda v: _texts(v, _path), "ignore_watch": _optional(lambda v: _texts(v, lambda p: _text(p, 1024))),
    "watch_delay": _DURATION,
    "log_type": _choice("raw", "json"), "log_date_format": _optional(_date_format), "time": _bool,
    "log_max_line": lambda v: _int(v, limits.MIN_LINE, limits.MAX_LINE),
    "log_max_size": lambda v: _int(v, 0, limits.MAX_SIZE), "log_rotate": _optional(_schedule),
    "log_retain": _optional(lambda v: _int(v, 0, limits.MAX_COUNT)), "log_max_age": _optional(_age),
    "log_compress": _bool, "redact": _bool, "redact_keys": lambda v: _texts(v, lambda k: _text(k, 1024)),
    "redact_patterns": lambda v: _texts(v, _pattern), "shell": _bool,
    "user": _optional(_account), "group": _optional(_account), "listen": lambda v: _texts(v, _listen),
    "ready": _optional(_ready), "wait_ready": _bool,
    "exec_mode": _optional(_choice("fork", "cluster")), "shutdown_with_message": _bool, "listen_timeout": _DURATION, "ready_timeout": _DURATION,
    "increment_var": _optional(lambda v: None if _env_name(v) else "is not an environment variable name"),
    "watchdog": _optional(_DURATION), "depends_on": lambda v: _texts(v, _name),
    "reload": _choice("rolling", "restart"), "cron_restart": _optional(_cron), "limits": _rlimits,
    "max_memory_restart": _optional(lambda v: _int(v, 1 << 20, 1 << 50)), "heap_profile": _bool,
    "thresholds": _thresholds,
    "health": _optional(_health),
    "source": _optional(_path), "env_name": _optional(lambda v: _text(v, 256)), "ignored": _texts,
}


def spec_problem(data: Mapping[str, Any]) -> str | None:
    """The first problem of a spec's JSON dict (``key: value what is accepted``), or None.
    Keys the daemon does not know are not checked (``from_dict`` drops them)."""
    for key, check in CHECKS.items():
        if key not in data:
            continue
        value = data[key]
        try:
            problem = check(value)
        except (TypeError, ValueError, AttributeError, RecursionError, OverflowError):  # an odd value an odd way
            problem = "is not a valid value"
        if problem is not None:
            return f"{key}: {_shown(key, value)} {problem}"
    return None


def _shown(key: str, value: Any) -> str:
    """The value as JSON, cut short; never an environment's values (secrets)."""
    if key == "env":
        return f"(a table of {len(value)})" if isinstance(value, dict) else f"(a {type(value).__name__})"
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        text = type(value).__name__
    return text if len(text) <= 80 else text[:77] + "..."


def log_paths_problem(data: Mapping[str, Any]) -> str | None:
    """A log file the daemon could never open (a directory, or a path under a file), or None.
    Looks at the file system: run when a spec arrives, is restored or is resurrected."""
    import os

    for key in ("out_file", "error_file", "log_file"):
        path = data.get(key)
        if not isinstance(path, str) or not path:
            continue
        parent = os.path.dirname(path)
        if os.path.isdir(path) or (os.path.exists(parent) and not os.path.isdir(parent)):
            return f"{key}: {_shown(key, path)} cannot be a log file (it is a directory, or under a file)"
    return None
