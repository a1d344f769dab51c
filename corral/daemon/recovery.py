"""Coming back after a daemon that died without stopping its apps (SIGKILL, crash, power loss).

The store remembers every instance's pid, process group and start time.  Any
of those processes still alive (same pid *and* same start time, so a reused
pid is never touched) is stopped with its whole group before fresh copies
start: there are never two copies of one instance.
"""

from __future__ import annotations

import asyncio
import logging

from corral.events import Note
from corral.process import procfs
from corral.daemon.supervisor import Supervisor
from corral.config.policies import default_policy, restart_policy
from corral.config.spec import AppSpec

log = logging.getLogger("corral.daemon")


async def recover(sup: Supervisor) -> list[str]:
    """Stop leftovers of the previous daemon, then bring back the apps that should run."""
    stored = _stored_apps(sup)
    policies = {name: restart_policy(spec) for name, _, _, spec, _ in stored}
    leftovers = []
    for app, _, pid, pgid, ticks, _ in sup.store.instances():
        if pid and procfs.is_same_process(pid, ticks):
            leftovers.append((app, pid, pgid or pid))
    waits = []
    for app, pid, pgid in leftovers:
        policy = policies.get(app) or default_policy()
        log.info("stopping pid %s of %s, left by the previous daemon", pid, app)
        # the store keys live processes by slot uid, not by instance number: no instance here
        sup.publish(Note(app=app, kind="recovered", message=f"stopped pid {pid} left running by the previous daemon"))
        sup.terminate(pgid, policy.stop_signal, policy.kill_timeout, app, None, until_gone=True)
        waits.append(sup.groups.wait_gone(pgid))
    if waits:
        await asyncio.gather(*waits)
    sup.store.clear_slots()
    names = []
    for name, app_id, base_env, spec, desired in stored:
        restored = sup.add_app(spec, base_env, app_id=app_id)
        if desired == "online":
            sup.start(restored)
            names.append(name)
    return names


def _stored_apps(sup: Supervisor) -> list[tuple[str, int, dict[str, str], AppSpec, str]]:
    """(name, id, base_env, spec, desired) of every stored app.  A spec that no longer loads (a
    damaged row, a value out of today's bounds) is left out rather than keeping the daemon from
    starting: one daemon.log line and one ``skipped`` event each; its row stays (``kill`` clears it)."""
    from corral.config.speccheck import log_paths_problem
    from corral.control.ops import MAX_ENV, env_problem

    stored = []
    for name, app_id, data, desired in sup.store.apps():
        try:
            base_env = data.pop("base_env", {})
            if env_problem(base_env, MAX_ENV) is not None:
                raise ValueError("base_env: not an environment")
            spec = AppSpec.from_dict(data)
            problem = log_paths_problem(data)
            if problem is not None:
                raise ValueError(problem)
            stored.append((name, app_id, base_env, spec, desired))
        except (ValueError, TypeError, AttributeError) as exc:
            message = f"stored spec does not load, app left out: {exc}"
            log.error("app %s: %s", name, message)
            sup.publish(Note(app=str(name), kind="skipped", message=message))
    return stored
