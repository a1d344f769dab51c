"""The jobs of an ecosystem file (the top-level ``[[jobs]]`` list, ``jobs:`` in YAML/JSON), checked.

::

    [[jobs]]
    name = "backup"
    script = "backup.py"        # or cmd; interpreter, venv, cwd, env, env_file as for apps
    cron = "0 3 * * *"          # one trigger: cron (5 fields, or 6 with seconds first; @daily ...),
    timezone = "Europe/Berlin"  #   interval = "90s", at = "2026-12-24T18:00:00", on_start = true
    timeout = "10m"             # then stop_signal, then SIGKILL after kill_timeout
    retries = 2                 # with exponential backoff from retry_delay ("1s" by default)
    overlap = "skip"            # skip | queue | replace: a job never runs twice at once
    jitter = "30s"
    catch_up = true             # one run at start if a scheduled time passed while the daemon was down
    env_from = "api"            # the environment of the file's app "api" (env, env_file, venv, cwd ...)
    history = 100               # runs kept

:func:`load_jobs` (the CLI) turns the raw tables into normalized job dicts, the part that runs
(``spec``) normalized exactly as an app (:func:`corral.config.normalize.normalize_app`); every
problem is one line naming the job and the field.  :func:`checked_jobs` is the daemon's check of
what it receives (it trusts nothing): cheap, no converters.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from corral.config.convert import Invalid, render, shown_key

#: Job-only keys -> what they hold.
JOB_KEYS: dict[str, str] = {
    "name": "the job's name", "cron": "a cron expression", "timezone": "the cron's time zone",
    "interval": "a duration between runs", "at": "one date-time", "on_start": "run when loaded",
    "timeout": "how long a run may take", "retries": "retries after a failure",
    "retry_delay": "the first retry's delay (doubled each time)", "overlap": "skip | queue | replace",
    "jitter": "a random delay up to this", "catch_up": "one run for the times missed while down",
    "enabled": "false: never runs by itself", "history": "runs kept", "env_from": "an app's environment",
}
#: App keys a job may give (how it runs); the others (instances, listen, watch ...) are for apps.
RUN_KEYS = ("script", "cmd", "args", "interpreter", "interpreter_args", "venv", "cwd", "env", "env_file",
            "env_inherit", "shell", "user", "group", "stop_signal", "kill_timeout", "out_file", "error_file",
            "log_file", "merge_logs", "log_type", "log_date_format", "time", "log_max_line", "log_max_size",
            "log_rotate", "log_retain", "log_max_age", "log_compress", "redact", "redact_keys",
            "redact_patterns", "limits", "namespace")
#: What ``env_from`` takes from the app (the job's own keys win).
SHARED = ("env", "env_file", "env_inherit", "venv", "cwd", "interpreter", "user", "group")
TRIGGERS = ("cron", "interval", "at", "on_start")
OVERLAPS = ("skip", "queue", "replace")
MAX_JOBS = 10_000
MAX_HISTORY = 10_000
MAX_RETRIES = 100


def _duration(value: Any, low: float = 0.0) -> float:
    from corral.config.convert import to_duration

    seconds = to_duration(value)
    if seconds < low:
        raise Invalid(f"is too short (at least {low:g}s)")
    return seconds


def _at(value: Any, timezone: str | None, now: float) -> float:
    from datetime import datetime

    from corral.jobs import cron

    when = value
    if isinstance(value, str):
        try:
            when = datetime.fromisoformat(value.strip())
        except ValueError:
            raise Invalid('is not a date-time (write it like "2026-12-24T18:00:00", local time, or with +01:00)') from None
    if not isinstance(when, datetime):
        raise Invalid('is not a date-time (write it like "2026-12-24T18:00:00")')
    if when.tzinfo is None:
        when = when.replace(tzinfo=cron.zone(timezone))
    stamp = when.timestamp()
    if stamp <= now:
        raise Invalid("is in the past (an at job runs once, at a time to come)")
    return stamp


def to_cron(value: Any) -> str:
    """A cron expression (``cron_restart``), normalized (``corral.jobs.cron.normalize``)."""
    from corral.jobs.cron import normalize

    try:
        return normalize(value)
    except ValueError as exc:
        raise Invalid(str(exc)) from None


def _count(value: Any, high: int, what: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= high:
        return value
    raise Invalid(f"is not {what} (a whole number from 0 to {high})")


def _job_value(key: str, value: Any, raw: Mapping[str, Any], now: float) -> Any:
    from corral.config.convert import to_bool, to_name

    if key == "name":
        return to_name(value)
    if key == "cron":
        from corral.jobs.cron import normalize

        try:
            return normalize(value)
        except ValueError as exc:
            raise Invalid(str(exc)) from None
    if key == "timezone":
        from corral.jobs.cron import zone

        if not isinstance(value, str):
            raise Invalid('is not a time zone (an IANA name like "Europe/Berlin")')
        try:
            zone(value)
        except ValueError as exc:
            raise Invalid(str(exc)) from None
        return value
    if key == "interval":
        return _duration(value, 1.0)
    if key == "at":
        tz = raw.get("timezone") if isinstance(raw.get("timezone"), str) else None
        return _at(value, tz, now)
    if key in ("timeout",):
        return _duration(value, 0.001)
    if key in ("retry_delay", "jitter"):
        return _duration(value)
    if key == "retries":
        return _count(value, MAX_RETRIES, "a number of retries")
    if key == "history":
        if value == 0:
            raise Invalid(f"is not a number of runs kept (from 1 to {MAX_HISTORY})")
        return _count(value, MAX_HISTORY, "a number of runs kept")
    if key == "overlap":
        if value not in OVERLAPS:
            raise Invalid('is not an overlap rule ("skip", "queue" or "replace")')
        return value
    if key == "env_from":
        return to_name(value)
    return to_bool(value)  # on_start, catch_up, enabled


def _job(raw: Any, where: str, apps: Mapping[str, Mapping[str, Any]], errors: list[str], now: float,
         base_dir: str, env_name: str | None, source: str | None) -> dict[str, Any] | None:
    from corral.config.errors import ConfigError
    from corral.config.fields import FIELD_BY_KEY
    from corral.config.normalize import normalize_app

    if not isinstance(raw, Mapping):
        errors.append(f"{where}: {render(raw)} is not a job (a table with a name, a script or cmd, and a trigger)")
        return None
    name = raw.get("name")
    label = f"{where} {render(name)}" if isinstance(name, str) and name else where
    before = len(errors)
    job: dict[str, Any] = {}
    run: dict[str, Any] = {}
    for key, value in raw.items():
        key = str(key)
        if key in JOB_KEYS:
            if value is None:
                continue
            try:
                job[key] = _job_value(key, value, raw, now)
            except Invalid as exc:
                errors.append(f"{label}: {key}: " + (f"{render(value)} {exc.text}" if exc.show_value else exc.text))
        elif key in RUN_KEYS or (key in FIELD_BY_KEY and FIELD_BY_KEY[key].name in RUN_KEYS):
            run[key] = value
        elif key in FIELD_BY_KEY:
            errors.append(f"{label}: {shown_key(key)}: is an app setting, not a job's (a job runs once per trigger)")
        else:
            import difflib

            close = difflib.get_close_matches(key, [*JOB_KEYS, *RUN_KEYS], n=1, cutoff=0.75)
            errors.append(f"{label}: {shown_key(key)}: unknown key"
                          + (f' (did you mean "{close[0]}"?)' if close else f" (job keys: {', '.join(JOB_KEYS)})"))
    if "name" not in job and len(errors) == before:
        errors.append(f"{label}: name: is missing (every job has a name)")
    given = [key for key in TRIGGERS if key in job and job[key] is not False]
    if len(given) > 1:
        errors.append(f"{label}: {given[1]}: a job has one trigger, and this one already has {given[0]} "
                      "(make two jobs)")
    elif not given and len(errors) == before:
        errors.append(f"{label}: no trigger: give cron, interval, at or on_start = true")
    if "timezone" in job and "cron" not in job and "at" not in job:
        errors.append(f"{label}: timezone: is for cron and at")
    source_app = apps.get(job["env_from"]) if "env_from" in job else None
    if "env_from" in job and source_app is None:
        known = ", ".join(render(n) for n in apps) or "none"
        errors.append(f"{label}: env_from: {render(job['env_from'])} is not an app of this file (apps: {known})")
    if len(errors) > before:
        return None
    if source_app is not None:
        run = {**{key: source_app[key] for key in SHARED if source_app.get(key) not in (None, [], {})}, **run}
    run["name"] = job["name"]
    try:
        spec = normalize_app(run, where=where, base_dir=base_dir, env_name=env_name, source=source)
    except ConfigError as exc:
        errors.extend(exc.messages)
        return None
    return {**DEFAULTS, **job, "spec": spec}


DEFAULTS: dict[str, Any] = {
    "cron": None, "timezone": None, "interval": None, "at": None, "on_start": False, "timeout": None,
    "retries": 0, "retry_delay": 1.0, "overlap": "skip", "jitter": 0.0, "catch_up": False, "enabled": True,
    "history": 100, "env_from": None,
}


def load_jobs(value: Any, where: str, apps: list[dict[str, Any]], base_dir: str, env_name: str | None,
              source: str | None, now: float, errors: list[str]) -> list[dict[str, Any]]:
    """The normalized jobs of a file's ``jobs`` (``apps``: the file's normalized apps, for
    ``env_from``); problems go to ``errors``, one line each."""
    if value is None:
        return []
    if isinstance(value, Mapping):
        value = [value]
    if not isinstance(value, list):
        errors.append(f"{where}: jobs: {render(value)} is not a list of jobs (in TOML: [[jobs]] tables)")
        return []
    if len(value) > MAX_JOBS:
        errors.append(f"{where}: jobs: {len(value)} jobs (at most {MAX_JOBS})")
        return []
    by_name = {app["name"]: app for app in apps}
    jobs: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(value):
        job = _job(raw, f"{where}: jobs[{index}]", by_name, errors, now, base_dir, env_name, source)
        if job is None:
            continue
        if job["name"] in by_name:
            errors.append(f'{where}: jobs[{index}] "{job["name"]}": name: is already the name of an app of this file '
                          "(give the job its own: they would share log files)")
            continue
        if job["name"] in seen:
            errors.append(f'{where}: jobs[{index}] "{job["name"]}": name: is already used by jobs[{seen[job["name"]]}]'
                          " (names must be unique)")
            continue
        seen[job["name"]] = index
        jobs.append(job)
    return jobs


# -- the daemon's check -------------------------------------------------------------------
def _problem(job: Any) -> str | None:
    if not isinstance(job, Mapping) or set(job) != {*DEFAULTS, "name", "spec"}:
        return "is not a job (as corral validate writes it)"
    from corral.config.command import is_valid_name

    if not isinstance(job["name"], str) or not is_valid_name(job["name"]):
        return "name: is not a name"
    for key in ("interval", "at", "timeout", "retry_delay", "jitter"):
        value = job[key]
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not math.isfinite(value) or value < 0):
            return f"{key}: is not a number of seconds"
    if job["cron"] is not None:
        from corral.jobs.cron import normalize

        try:
            normalize(job["cron"])
        except ValueError as exc:
            return f"cron: {exc}"
    if job["timezone"] is not None and not isinstance(job["timezone"], str):
        return "timezone: is not a time zone"
    if job["overlap"] not in OVERLAPS:
        return "overlap: is not skip, queue or replace"
    for key, high in (("retries", MAX_RETRIES), ("history", MAX_HISTORY)):
        if isinstance(job[key], bool) or not isinstance(job[key], int) or not 0 <= job[key] <= high:
            return f"{key}: is out of range"
    if any(not isinstance(job[key], bool) for key in ("on_start", "catch_up", "enabled")):
        return "on_start, catch_up and enabled are true or false"
    if sum(1 for key in TRIGGERS if job[key] not in (None, False)) != 1:
        return "has not exactly one trigger"
    from corral.config.spec import AppSpec

    try:
        AppSpec.from_dict(job["spec"])
    except ValueError as exc:
        return f"spec: {exc}"
    if job["spec"].get("name") != job["name"]:
        return "spec: its name is not the job's"
    return None


def checked_env(value: Any) -> dict[str, str]:
    """The environment the jobs of a file start from (``jobs_env``: the shell's of its ``start``)."""
    if isinstance(value, dict) and all(isinstance(k, str) and k and "=" not in k and "\0" not in k
                                       and isinstance(v, str) and "\0" not in v for k, v in value.items()):
        return dict(value)
    raise Invalid("is not an environment", show_value=False)


def checked_jobs(value: Any) -> list[dict[str, Any]]:
    """The daemon's check of the jobs it receives (normalized by :func:`load_jobs`)."""
    if not isinstance(value, list) or len(value) > MAX_JOBS:
        raise Invalid("is not a list of jobs", show_value=False)
    names: set[str] = set()
    for index, job in enumerate(value):
        problem = _problem(job)
        if problem is None and job["name"] in names:
            problem = "name: is used twice"
        if problem is not None:
            raise Invalid(problem, suffix=f"[{index}]", show_value=False)
        names.add(job["name"])
    return [dict(job) for job in value]
