"""The typed app spec: one attribute per setting of :data:`corral.config.fields.FIELDS`.

The attribute block below is generated from FIELDS (``python -m corral.config.docs --write``;
a test fails while it is out of date), so the defaults written here are FIELDS' own.

An :class:`AppSpec` is what the daemon holds for each app.  The wire protocol, the SQLite store
and ``dump.json`` carry its JSON dict (:meth:`AppSpec.to_dict`); :meth:`AppSpec.from_dict`
reads one back, filling keys that an older corral did not store with today's defaults, after
checking every value it holds (:mod:`corral.config.speccheck`): a spec is valid or not built.

Standard library only, and no converters: the daemon imports this, not :mod:`corral.config.fields`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal


@dataclass(frozen=True, slots=True, kw_only=True)
class AppSpec:
    """One app's normalized settings (see the README's key table for each one's meaning)."""

    # --- generated from FIELDS: python -m corral.config.docs --write ---
    name: str
    namespace: str = "default"
    script: str | None = None
    cmd: list[str] | None = None
    args: list[str] = field(default_factory=list)
    interpreter: str | None = None
    interpreter_args: list[str] = field(default_factory=list)
    venv: str | None = None
    cwd: str
    instances: int = 1
    env: dict[str, str] = field(default_factory=dict)
    env_file: str | None = None
    env_inherit: list[str] = field(default_factory=list)
    autorestart: Literal["always", "on-failure", "never"] = "always"
    min_uptime: float = 1.0
    max_restarts: int | None = None
    restart_delay: float = 0.0
    exp_backoff_restart_delay: float = 0.1
    kill_timeout: float = 5.0
    stop_signal: str = "SIGTERM"
    stop_exit_codes: list[int] = field(default_factory=list)
    out_file: str | None = None
    error_file: str | None = None
    merge_logs: bool = False
    log_file: bool | str | None = None
    log_type: Literal["raw", "json"] = "raw"
    log_date_format: str | None = None
    time: bool = True
    log_max_line: int = 65536
    log_max_size: int = 10485760
    log_rotate: str | None = None
    log_retain: int | None = 10
    log_max_age: float | None = None
    log_compress: bool = False
    redact: bool = True
    redact_keys: list[str] = field(default_factory=list)
    redact_patterns: list[str] = field(default_factory=list)
    shell: bool = False
    user: str | None = None
    group: str | None = None
    limits: dict[str, list[int | None]] = field(default_factory=dict)
    watch: list[str] = field(default_factory=list)
    ignore_watch: list[str] | None = None
    watch_delay: float = 0.0
    listen: list[str] = field(default_factory=list)
    ready: dict[str, Any] | None = None
    wait_ready: bool = False
    exec_mode: Literal["fork", "cluster"] | None = None
    shutdown_with_message: bool = False
    listen_timeout: float = 3.0
    ready_timeout: float = 30.0
    increment_var: str | None = None
    watchdog: float | None = None
    depends_on: list[str] = field(default_factory=list)
    reload: Literal["rolling", "restart"] = "rolling"
    max_memory_restart: int | None = None
    cron_restart: str | None = None
    heap_profile: bool = False
    thresholds: dict[str, Any] = field(default_factory=dict)
    health: dict[str, Any] | None = None
    # --- end of generated attributes ---
    source: str | None = None  # the ecosystem file it came from (absolute); None: a command line
    env_name: str | None = None  # the --env NAME the file was read with
    ignored: list[str] = field(default_factory=list)  # PM2 keys given but not implemented

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AppSpec:
        """The spec of a JSON dict from the CLI, the store or a dump; unknown keys are dropped
        (a newer corral's), missing ones take their defaults (an older corral's)."""
        if not isinstance(data, Mapping) or not isinstance(data.get("name"), str):
            raise ValueError("not an app spec (a JSON object with a name)")
        from corral.config.speccheck import spec_problem  # the daemon trusts no spec it receives

        problem = spec_problem(data)
        if problem is not None:
            raise ValueError(problem)
        try:
            return cls(**{key: data[key] for key in KEYS if key in data})
        except TypeError as exc:  # a required key is missing
            raise ValueError(f"not an app spec ({exc})") from None

    def to_dict(self) -> dict[str, Any]:
        """The JSON dict: every key, values copied (changing it leaves the spec alone)."""
        return {key: copy.deepcopy(getattr(self, key)) for key in KEYS}

    def with_changes(self, **changes: Any) -> AppSpec:
        """A copy with some settings changed (``spec.with_changes(instances=4)``)."""
        return replace(self, **changes)


#: Every attribute, in declaration order: FIELDS, then source, env_name, ignored.
KEYS: tuple[str, ...] = tuple(f.name for f in fields(AppSpec))
