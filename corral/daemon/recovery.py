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
import json
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
    older corral) an instance row whose pid is still the same process.  A value of the wrong
    type in a row (a damaged file) counts as unknown."""
    trees = []
    for marker, app, _, cgroup, pid, ticks in sup.store.trees():
        if not isinstance(marker, str):
            continue
        pid, ticks, cgroup = _int(pid), _int(ticks), cgroup if isinstance(cgroup, str) else None
        same = pid is not None and procfs.is_same_process(pid, ticks)
        trees.append((str(app), sup.tracker.adopt(marker, cgroup, pid, group_ok=same)))
    recorded = {t.cgroup for _, t in trees}
    for cgroup in sup.tracker.cgroups.children() if sup.tracker.cgroups else []:
        if cgroup not in recorded:  # a cgroup of this home the store does not name: whatever is in it
            trees.append(("?", sup.tracker.adopt(os.path.basename(cgroup), cgroup, None, group_ok=False)))
    groups = {t.pgid for _, t in trees}
    for app, uid, pid, pgid, ticks, _ in sup.store.instances():
        pid, pgid, ticks = _int(pid), _int(pgid), _int(ticks)
        if pid and pid > 0 and pid not in groups and procfs.is_same_process(pid, ticks):
            group = pgid if pgid and pgid > 0 else pid
            trees.append((str(app), sup.tracker.adopt(f"slot-{app}-{uid}", None, group, group_ok=True)))
    return trees


def _int(value: object) -> int | None:
    return value if type(value) is int else None


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
    """(name, id, base_env, spec, desired, inferred listen addresses) of every stored app.  A row that no longer loads (a
    damaged row: not JSON, not an object, an id that is not a number; a value out of today's
    bounds) is left out rather than keeping the daemon from starting: one daemon.log line and one
    ``skipped`` event each; its row stays, listed by ``ls`` as ``skipped`` with the reason, until
    ``corral delete NAME`` (or ``kill``) removes it or a ``start`` of that name replaces it."""
    stored = []
    for rowid, name, app_id, text, desired in sup.store.apps():
        try:
            base_env, spec, inferred = _load_row(name, app_id, text)
            stored.append((name, app_id, base_env, spec, desired, inferred))
        except Exception as exc:  # noqa: BLE001 - whatever is wrong with one row, the others load
            shown = name if isinstance(name, str) else f"#{rowid}"
            message = f"stored spec does not load, app left out: {exc}"
            log.error("app %s: %s", shown, message)
            sup.store.skip(rowid, shown, app_id if type(app_id) is int else None, message)
            sup.publish(Note(app=shown, kind="skipped", message=message))
    return stored


def _load_row(name: object, app_id: object, text: object) -> tuple[dict[str, str], AppSpec, dict[str, list[int]]]:
    """The base environment, spec and inferred listen addresses (a Node app in cluster mode: the
    ports its code listened on) of one stored row; ValueError (or any other) says what is wrong."""
    from corral.config.speccheck import log_paths_problem
    from corral.control.ops import MAX_ENV, env_problem

    if not isinstance(name, str):
        raise ValueError(f"its name is not text ({type(name).__name__})")
    if type(app_id) is not int:
        raise ValueError(f"its id is not a number ({app_id!r:.40})")
    try:
        data = json.loads(text)  # type: ignore[arg-type]  # whatever the row holds
    except RecursionError:
        raise ValueError("not valid JSON (nested too deeply)") from None
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"not a JSON object (a JSON {type(data).__name__})")
    base_env = data.pop("base_env", {})
    if env_problem(base_env, MAX_ENV) is not None:
        raise ValueError("base_env: not an environment")
    inferred = {}
    if "listen_inferred" in data:
        from corral.daemon.nodeapps import checked_inferred

        inferred = checked_inferred(data.pop("listen_inferred"))
    spec = AppSpec.from_dict(data)
    problem = log_paths_problem(data)
    if problem is not None:
        raise ValueError(problem)
    if spec.name != name:
        raise ValueError(f"it is the spec of another app ({spec.name!r:.70})")
    return base_env, spec, inferred
