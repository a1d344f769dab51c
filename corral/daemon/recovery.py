"""Coming back after a daemon that died without stopping its apps (SIGKILL, crash, power loss).

Before every fork the daemon writes the spawn's marker (and cgroup) to the store and commits
it (write-ahead, ``Store.intend``), so whatever instant the old daemon died at, the store names
every spawn whose processes may still run.  Every process of those spawns still alive (found by
cgroup, by the ``CORRAL_INSTANCE_ID`` marker anywhere in /proc, and by the saved process group
when its leader is the very process saved: same pid *and* start time) is stopped, gracefully
then with SIGKILL after ``kill_timeout``, before fresh copies start: never two copies of one
instance.
"""

from __future__ import annotations

import asyncio
import logging
import os

from corral.events import Note
from corral.process import procfs
from corral.process.tracking import Tree
from corral.daemon.supervisor import Supervisor
from corral.config.policies import default_policy, restart_policy
from corral.config.spec import AppSpec
from corral.lifecycle.policy import Policy

log = logging.getLogger("corral.daemon")


async def recover(sup: Supervisor) -> list[str]:
    """Stop leftovers of the previous daemon, then bring back the apps that should run."""
    stored = _stored_apps(sup)
    policies = {name: restart_policy(spec) for name, _, _, spec, _, _ in stored}
    await end_leftovers(sup, policies)
    sup.store.clear_slots()
    names = []
    for name, app_id, base_env, spec, desired, inferred in stored:
        restored = sup.add_app(spec, base_env, app_id=app_id, inferred=inferred)
        if desired == "online":
            sup.start(restored)
            names.append(name)
    return names


def _leftover_trees(sup: Supervisor) -> list[tuple[str, Tree]]:
    """(app, tree) of every spawn the store names: its write-ahead record, or (a state.db of an
    older corral) an instance row whose pid is still the same process."""
    trees = []
    for marker, app, _, cgroup, pid, ticks in sup.store.trees():
        same = pid is not None and procfs.is_same_process(pid, ticks)
        trees.append((app, sup.tracker.adopt(marker, cgroup, pid, group_ok=same)))
    recorded = {t.cgroup for _, t in trees}
    for cgroup in sup.tracker.cgroups.children() if sup.tracker.cgroups else []:
        if cgroup not in recorded:  # a cgroup of this home the store does not name: whatever is in it
            trees.append(("?", sup.tracker.adopt(os.path.basename(cgroup), cgroup, None, group_ok=False)))
    groups = {t.pgid for _, t in trees}
    for app, uid, pid, pgid, ticks, _ in sup.store.instances():
        if pid and pid not in groups and procfs.is_same_process(pid, ticks):
            trees.append((app, sup.tracker.adopt(f"slot-{app}-{uid}", None, pgid or pid, group_ok=True)))
    return trees


async def end_leftovers(sup: Supervisor, policies: dict[str, Policy]) -> None:
    trees = _leftover_trees(sup)
    if not trees:
        return
    members = sup.tracker.members([tree for _, tree in trees])  # one pass over /proc
    waits = []
    for app, tree in trees:
        left = members.get(tree.marker)
        if not left:
            continue
        policy = policies.get(app) or default_policy()
        pids = ", ".join(str(p.pid) for p in left[:10]) + (" ..." if len(left) > 10 else "")
        log.info("stopping %d process(es) of %s left by the previous daemon: %s", len(left), app, pids)
        if app in policies:  # the store keys spawns by slot uid, not by instance number: no instance here
            sup.publish(Note(app=app, kind="recovered",
                             message=f"stopped {len(left)} process(es) left running by the previous daemon (pid {pids})"))
        sup.terminate(tree, policy.stop_signal, policy.kill_timeout, app, None, until_gone=True, members=left)
        waits.append(sup.groups.wait_gone(tree))
    if waits:
        await asyncio.gather(*waits)
    for _, tree in trees:
        sup.tracker.release(tree)
        sup.store.tree_gone(tree.marker)


def _stored_apps(sup: Supervisor) -> list[tuple[str, int, dict[str, str], AppSpec, str, dict[str, list[int]]]]:
    """(name, id, base_env, spec, desired, inferred listen addresses) of every stored app.  A spec
    that no longer loads (a damaged row, a value out of today's bounds) is left out rather than
    keeping the daemon from starting: one daemon.log line and one ``skipped`` event each; its row
    stays (``kill`` clears it)."""
    from corral.config.speccheck import log_paths_problem
    from corral.control.ops import MAX_ENV, env_problem

    stored = []
    for name, app_id, data, desired in sup.store.apps():
        try:
            base_env = data.pop("base_env", {})
            if env_problem(base_env, MAX_ENV) is not None:
                raise ValueError("base_env: not an environment")
            inferred = {}
            if "listen_inferred" in data:  # a Node app in cluster mode: the ports its code listened on
                from corral.daemon.nodeapps import checked_inferred

                inferred = checked_inferred(data.pop("listen_inferred"))
            spec = AppSpec.from_dict(data)
            problem = log_paths_problem(data)
            if problem is not None:
                raise ValueError(problem)
            stored.append((name, app_id, base_env, spec, desired, inferred))
        except (ValueError, TypeError, AttributeError) as exc:
            message = f"stored spec does not load, app left out: {exc}"
            log.error("app %s: %s", name, message)
            sup.publish(Note(app=str(name), kind="skipped", message=message))
    return stored
