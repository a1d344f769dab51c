"""How a changed app is applied, pure: one place decides (``corral start FILE``, ``restart``, ``reload``).

``plan(old, new, running)`` compares the stored spec with the new one:

* no old spec: **Start** (a new app);
* nothing runs: **Start** with the new spec;
* equal: **Unchanged** (``already running``);
* only keys the processes never see changed (restart policy, kill timeout, namespace,
  ``instances`` ...): **HotUpdate**, applied in place, nothing restarted (``instances``
  resizes);
* an app serving a shared socket with ``reload = "rolling"`` (declared ``listen``, or a Node
  app in cluster mode before and after): **RollingReload** (start new, wait ready, stop old);
* a Node app entering or leaving cluster mode (``exec_mode``, or ``instances`` crossing 1):
  **Restart**, never in place: an instance in fork mode holds its port by itself, so no
  instance in cluster mode could share it;
* anything else: **Restart** (stop, then start).

``for_reload`` is the same decision for an explicit ``corral reload``: rolling unless the
app asks for ``reload = "restart"`` or nothing runs.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Mapping

from corral.config.command import node_mode


class Change(StrEnum):
    START = "start"
    UNCHANGED = "unchanged"
    HOT_UPDATE = "hot_update"
    ROLLING_RELOAD = "rolling_reload"
    RESTART = "restart"


#: Keys a running process never sees: a change to them is applied without a restart.
HOT_KEYS = frozenset({
    "autorestart", "min_uptime", "max_restarts", "restart_delay", "exp_backoff_restart_delay",
    "kill_timeout", "stop_signal", "stop_exit_codes", "namespace", "depends_on", "instances",
    "listen_timeout", "ready_timeout", "watchdog", "reload", "source", "env_name", "ignored",
    "watch", "ignore_watch", "watch_delay",
})


def changed_keys(old: Mapping[str, Any], new: Mapping[str, Any]) -> set[str]:
    return {k for k in set(old) | set(new) if old.get(k) != new.get(k)}


def plan(old: Mapping[str, Any] | None, new: Mapping[str, Any], running: bool) -> Change:
    if old is None or not running:
        return Change.START
    changed = changed_keys(old, new)
    if not changed:
        return Change.UNCHANGED
    cluster, was_cluster = node_mode(new)[0], node_mode(old)[0]
    if changed <= HOT_KEYS and cluster == was_cluster:
        return Change.HOT_UPDATE
    if (new.get("listen") or (cluster and was_cluster)) and new.get("reload") == "rolling":
        return Change.ROLLING_RELOAD
    return Change.RESTART


def for_reload(spec: Mapping[str, Any], running: bool) -> Change:
    """``corral reload``: replace instances one by one, unless the app asks for a restart."""
    if not running or spec.get("reload") == "restart":
        return Change.RESTART
    return Change.ROLLING_RELOAD
