"""Which variables of the environment ``corral start`` ran in an app keeps (``env_inherit``).

The CLI sends its environment with ``start`` (and ``restart``/``reload --update-env``) so an app
sees the shell's ``PATH``, locale and settings, as with PM2.  That environment also holds every
token of that shell, and what the daemon keeps is saved in ``state.db`` and ``dump.json``.  So:

* **secrets are not inherited**: a variable whose name is secret by the one rule the logs and
  ``describe`` use (:func:`corral.app.redact.is_secret_name`: ``GITHUB_TOKEN``,
  ``AWS_SECRET_ACCESS_KEY``, ``DB_PASSWORD`` ...), or whose value holds a URL with a password
  (``DATABASE_URL=postgres://u:secret@h/db``), is dropped unless a pattern of the app's
  ``env_inherit`` names it (``env_inherit = ["AWS_*", "GITHUB_TOKEN"]``, shell-style ``*``,
  ``?`` and ``[...]``, case-sensitive).  The CLI filters what it sends (and names what it kept
  back, on stderr) and the daemon filters again (it trusts no client), per app;
* **an app run as another user** (``user =``, daemon running as root) inherits only
  :data:`OTHER_USER_KEEPS` (``PATH``, the locale, ``TZ``, ``TERM``) and what its
  ``env_inherit`` names; ``HOME``, ``USER``, ``LOGNAME`` and ``SHELL`` come from that user's
  password entry (:mod:`corral.process.identity`).

The app's own ``env``, ``env_<name>`` and ``env_file`` always apply, on top.  ``corral run``
keeps its whole environment (nothing is saved, and containers pass secrets that way).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase
from typing import Any

#: systemd's protocol variables, and Node's IPC channel and cluster ones (a CLI run by a Node
#: parent would otherwise hand its channel's fd number to every app): never inherited (the daemon
#: sets its own).
PROTOCOL_VARS = frozenset({"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "NOTIFY_SOCKET", "WATCHDOG_USEC",
                           "WATCHDOG_PID", "NODE_CHANNEL_FD", "NODE_CHANNEL_SERIALIZATION_MODE",
                           "NODE_UNIQUE_ID", "CORRAL_NODE_CLUSTER", "CORRAL_NODE_LISTEN", "CORRAL_NODE_INFERRED"})
#: What an app run as another user inherits from the CLI's environment (plus its ``env_inherit``).
OTHER_USER_KEEPS = ("PATH", "LANG", "LANGUAGE", "LC_*", "TZ", "TERM")
_PATTERN = re.compile(r"[A-Za-z0-9_.*?\[\]!-]+")


def to_env_inherit(value: Any) -> list[str]:
    """A list of variable names or shell-style patterns (``"AWS_*"``); a string is one name."""
    from corral.config.convert import Invalid  # the daemon imports this module, not the converters

    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
        raise Invalid('is not a list of variable names (use ["AWS_*", "GITHUB_TOKEN"])')
    for i, item in enumerate(items):
        if not _PATTERN.fullmatch(item):
            raise Invalid('is not a variable name or pattern (letters, digits, "_", and * ? [...])',
                          suffix=f"[{i}]", value=item)
    return list(items)


def wanted(name: str, patterns: Iterable[str]) -> bool:
    return any(fnmatchcase(name, p) for p in patterns)


def is_secret(name: str, value: str) -> bool:
    """A secret name, or a value with a URL password in it."""
    from corral.app.redact import is_secret_name, redact_url_credentials

    return is_secret_name(name) or redact_url_credentials(value) is not value


def inherited(environ: Mapping[str, str], patterns: Iterable[str] = ()) -> dict[str, str]:
    """``environ`` without secrets (unless ``patterns`` name them) and protocol variables."""
    patterns = tuple(patterns)
    return {k: v for k, v in environ.items()
            if k not in PROTOCOL_VARS and (not is_secret(k, v) or wanted(k, patterns))}


def withheld(environ: Mapping[str, str], patterns: Iterable[str] = ()) -> list[str]:
    """The names :func:`inherited` drops as secrets, sorted (for a note to the user)."""
    patterns = tuple(patterns)
    return sorted(k for k, v in environ.items()
                  if k not in PROTOCOL_VARS and is_secret(k, v) and not wanted(k, patterns))


def for_other_user(environ: Mapping[str, str], patterns: Iterable[str] = ()) -> dict[str, str]:
    """What an app run as another user inherits: :data:`OTHER_USER_KEEPS` and ``patterns``."""
    keep = (*OTHER_USER_KEEPS, *patterns)
    return {k: v for k, v in environ.items() if k not in PROTOCOL_VARS and wanted(k, keep)}


def kept(environ: Mapping[str, str], patterns: Iterable[str] = (), whole: bool = False) -> dict[str, str]:
    """What the daemon keeps (and saves) of the environment an app was started from:
    :func:`inherited`, or all of it when ``whole`` (``corral run``, which saves nothing)."""
    return dict(environ) if whole else inherited(environ, patterns)


class Shared:
    """Equal environments kept once: 50 apps started together (or restored) from one shell
    would hold 50 equal copies (~0.7 KiB each, more for a large environment).  The last few
    distinct ones are remembered; nobody changes a kept environment in place."""

    def __init__(self, size: int = 4) -> None:
        self._recent: list[dict[str, str]] = []
        self._size = size

    def __call__(self, env: dict[str, str]) -> dict[str, str]:
        for known in self._recent:
            if known == env:
                return known
        self._recent = [env, *self._recent[: self._size - 1]]
        return env
