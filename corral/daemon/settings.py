"""The daemon-wide settings: checked (``config.host.to_host``: the daemon trusts nothing), kept in
the store (so a new daemon has them) and handed to features through ``DaemonCore.settings()``.

Loaded only when a file gives such settings, or a stored one exists.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from corral.config.host import to_host
from corral.exceptions import UserMistake

if TYPE_CHECKING:
    from corral.daemon.core import DaemonCore
    from corral.daemon.store import Store

log = logging.getLogger("corral.daemon")
SECRET = ("metrics_token", "jobs_env")


def apply(core: DaemonCore, store: Store, raw: dict[str, Any]) -> None:
    """A ``start`` carried a file's settings: check them all, then keep and apply them."""
    try:
        converted = to_host(raw, "host")
    except ValueError as exc:
        raise UserMistake(str(exc).splitlines()[0]) from None
    for key in set(store.settings()) - set(raw):  # the file is the truth: a key it dropped goes back
        store.forget_setting(key)                  # to its default (no metrics_listen: no endpoint)
    for key, value in raw.items():
        store.put_setting(key, value)
    core.set_settings(converted)


def restore(core: DaemonCore, store: Store) -> None:
    """The settings a previous daemon kept (one that no longer passes is left out, said once)."""
    stored = store.settings()
    good: dict[str, Any] = {}
    for key, value in stored.items():
        try:
            good.update(to_host({key: value}, "state.db settings"))
        except ValueError as exc:
            log.warning("%s: left out", str(exc).splitlines()[0])
    if good:
        core.set_settings(good)


def shown(settings: Any) -> dict[str, Any]:
    """The settings as ``ping --json`` and ``describe`` show them (the token masked; jobs by name:
    their environments stay in the daemon, ``corral jobs`` shows them)."""
    out = {key: ("********" if key in SECRET else value) for key, value in dict(settings).items()}
    if isinstance(out.get("jobs"), list):
        out["jobs"] = [job.get("name") for job in out["jobs"] if isinstance(job, dict)]
    return out
