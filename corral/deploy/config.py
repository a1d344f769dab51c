"""The ``[deploy]`` table of an ecosystem file, read and checked (PURE: no IO).

Two forms load:

* corral's: one top-level ``[deploy]`` table whose keys are the settings below;
* PM2's: ``deploy: { production: {...}, staging: {...} }`` in an ecosystem.config.js (or any
  format): a table of environments, picked with ``corral deploy production``.

Keys (PM2's names where PM2 has the setting): ``repo`` (a git URL or path, or a plain directory),
``ref`` (a branch, tag or commit; PM2's ``origin/main`` works too), ``path`` (the deploy root:
``releases/``, ``shared/``, ``current``), ``pre-setup`` (run once, before the first release),
``pre-deploy-local`` (run here before fetching), ``post-deploy`` (run in the new release after
the switch and the rollout), ``build`` (commands run in the new release before the switch),
``build_timeout``, ``keep_releases`` (5), ``shared`` (files and dirs linked from ``shared/``; a
trailing ``/`` is a directory), ``bake`` (how long the new release is watched after the switch,
60 s).  ``host``/``user`` (PM2's remote deploys) are refused with one line: a fleet is deployed
through ``corral export ansible``, which runs ``corral deploy`` on each host.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from corral.exceptions import UserMistake
from corral.units import parse_duration

KEEP_RELEASES = 5
BAKE = 60.0
BUILD_TIMEOUT = 600.0
REMOTE = ("remote deploys (host/user) go through `corral export ansible`: its playbook runs "
          "`corral deploy` on each host")
KEYS = ("repo", "ref", "path", "pre-setup", "pre-deploy-local", "post-deploy", "build", "build_timeout",
        "keep_releases", "shared", "bake")
PM2_ONLY = ("port", "key", "ssh_options", "forward-agent", "needs_tty", "post-setup", "pre-deploy", "test", "env")


class DeployConfigError(UserMistake):
    """The deploy table is missing or wrong: one line naming the file and key."""


@dataclass(frozen=True)
class DeployConfig:
    repo: str
    path: str
    ref: str = "HEAD"
    pre_setup: tuple[str, ...] = ()
    pre_deploy_local: tuple[str, ...] = ()
    post_deploy: tuple[str, ...] = ()
    build: tuple[str, ...] = ()
    build_timeout: float = BUILD_TIMEOUT
    keep_releases: int = KEEP_RELEASES
    shared: tuple[str, ...] = ()
    bake: float = BAKE
    environment: str = ""
    ignored: tuple[str, ...] = field(default=())  # PM2 keys corral does not use (one warning)


def environments(raw: Any) -> list[str]:
    """The environment names of PM2's form (empty for corral's own table)."""
    if isinstance(raw, dict) and raw and all(isinstance(v, dict) for v in raw.values()):
        return [str(k) for k in raw]
    return []


def pick(raw: Any, where: str, environment: str | None) -> tuple[dict[str, Any], str]:
    """The table to use and its environment name ("" for corral's form)."""
    if raw is None:
        raise DeployConfigError(f"{where}: no [deploy] table (add repo, ref and path; see README \"Deploy\")")
    if not isinstance(raw, dict):
        raise DeployConfigError(f"{where}: deploy: is not a table")
    names = environments(raw)
    if not names:
        if environment:
            raise DeployConfigError(f'{where}: deploy: no environment "{environment}" (the [deploy] table has '
                                    "no environments: run `corral deploy` without one)")
        return raw, ""
    if environment is None:
        if len(names) == 1:
            return raw[names[0]], names[0]
        raise DeployConfigError(f"{where}: deploy: pick an environment: {', '.join(names)} "
                                f"(`corral deploy {names[0]}`)")
    if environment not in raw:
        raise DeployConfigError(f'{where}: deploy: no environment "{environment}" (there are: {", ".join(names)})')
    return raw[environment], environment


def parse(raw: Any, where: str, environment: str | None = None) -> DeployConfig:
    """The checked deploy settings of a file's ``deploy`` value; :class:`DeployConfigError` else."""
    table, env = pick(raw, where, environment)
    at = f"{where}: deploy" + (f".{env}" if env else "")
    if table.get("host") or table.get("user"):
        raise DeployConfigError(f"{at}: {REMOTE}")
    unknown = [k for k in table if k not in KEYS and k not in PM2_ONLY and k not in ("host", "user")]
    if unknown:
        raise DeployConfigError(f"{at}: {unknown[0]}: unknown key (deploy takes {', '.join(KEYS)})")
    for key in ("repo", "path"):
        if not isinstance(table.get(key), str) or not table[key].strip():
            raise DeployConfigError(f"{at}: {key} is required (a string)")
    values: dict[str, Any] = {"repo": table["repo"].strip(), "path": table["path"].strip(), "environment": env,
                              "ignored": tuple(k for k in table if k in PM2_ONLY)}
    if "ref" in table:
        values["ref"] = _text(table["ref"], at, "ref")
    for key in ("pre-setup", "pre-deploy-local", "post-deploy", "build"):
        if key in table:
            values[key.replace("-", "_")] = _commands(table[key], at, key)
    if "shared" in table:
        values["shared"] = _shared(table["shared"], at)
    for key in ("bake", "build_timeout"):
        if key in table:
            values[key] = _duration(table[key], at, key)
    if "keep_releases" in table:
        keep = table["keep_releases"]
        if not isinstance(keep, int) or isinstance(keep, bool) or not 2 <= keep <= 1000:
            raise DeployConfigError(f"{at}: keep_releases: {keep!r} is not a number from 2 to 1000")
        values["keep_releases"] = keep
    return DeployConfig(**values)


def _text(value: Any, at: str, key: str) -> str:
    if not isinstance(value, str) or not value.strip() or "\0" in value or "\n" in value:
        raise DeployConfigError(f"{at}: {key}: {value!r} is not a one-line string")
    return value.strip()


def _commands(value: Any, at: str, key: str) -> tuple[str, ...]:
    """A shell command or a list of them (PM2's hooks are one string; ``&&`` chains work)."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(c, str) and c.strip() and "\0" not in c for c in items):
        raise DeployConfigError(f"{at}: {key}: {value!r} is not a shell command or a list of them")
    return tuple(c.strip() for c in items)


def _shared(value: Any, at: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        raise DeployConfigError(f"{at}: shared: {value!r} is not a list of paths")
    out = []
    for item in items:
        parts = item.strip("/").split("/") if isinstance(item, str) else []
        if not parts or item.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\0" in item:
            raise DeployConfigError(f"{at}: shared: {item!r} is not a path inside the release "
                                    '(relative, no "..": "logs/", ".env")')
        out.append(item)
    return tuple(out)


def _duration(value: Any, at: str, key: str) -> float:
    try:
        seconds = parse_duration(value)
    except (ValueError, TypeError):
        raise DeployConfigError(f'{at}: {key}: {value!r} is not a duration (write it like "60s" or "5m")') from None
    if seconds <= 0 or seconds > 86400:
        raise DeployConfigError(f"{at}: {key}: {value!r} is not a duration above 0 and up to 24h (60s, 5m)")
    return seconds
