"""The lifecycle's restart policy, built from an app's spec.

It lives on the config side because ``corral.lifecycle`` stays pure and knows nothing of
config; every value comes from the :class:`~corral.config.spec.AppSpec`, whose defaults are
declared once, in :data:`corral.config.fields.FIELDS`.  Cheap to import: the daemon uses it.
"""

from __future__ import annotations

from corral.config.command import node_mode
from corral.config.spec import AppSpec
from corral.lifecycle.policy import Policy


def ready_mode(spec: AppSpec) -> str:
    """READY=1 when asked for (``ready = "notify"``, PM2's ``wait_ready``), else a probe,
    else ``listen_timeout`` for apps with shared sockets and Node apps in cluster mode ("delay":
    launching until then, or until the Node preload reports that a server listens); any other
    app is online at once and ready when one of its processes listens on TCP, or after
    ``listen_timeout`` ("auto")."""
    if spec.wait_ready or (spec.ready is not None and spec.ready.get("kind") == "notify"):
        return "notify"
    if spec.ready:
        return "probe"
    return "delay" if spec.listen or node_mode(spec)[0] else "auto"


def restart_policy(spec: AppSpec) -> Policy:
    """The :class:`Policy` that ``corral.lifecycle.instance.step`` applies to every instance of ``spec``."""
    return Policy(
        autorestart=spec.autorestart,
        min_uptime=spec.min_uptime,
        max_restarts=spec.max_restarts,
        restart_delay=spec.restart_delay,
        backoff_base=spec.exp_backoff_restart_delay,
        kill_timeout=spec.kill_timeout,
        stop_signal=spec.stop_signal,
        stop_exit_codes=frozenset(spec.stop_exit_codes),
        ready_mode=ready_mode(spec),
        ready_delay=spec.listen_timeout,
        ready_timeout=spec.ready_timeout,
        watchdog=spec.watchdog,
    )


def default_policy(**changes: object) -> Policy:
    """The policy of an app with every setting at its default, with ``changes`` (for tests, and
    for processes whose app is unknown)."""
    from dataclasses import replace

    policy = restart_policy(AppSpec(name="app", cwd="/"))
    return replace(policy, **changes) if changes else policy  # type: ignore[arg-type]
