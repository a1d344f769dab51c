"""``corral releases`` and ``corral rollback [APP]``: the releases of a deploy path, and going back to
the previous good one by hand (``current`` switched atomically, the apps rolled onto it).

Loaded only by these commands (``cli.main`` names them lazily).
"""

from __future__ import annotations

import argparse
import sys

from corral.cli.deploy import Target, reload
from corral.cli.main import emit_json
from corral.control import protocol
from corral.control.client import Client
from corral.deploy import releases as rl
from corral.deploy.switch import DeployError, Lock, run_hooks, switch


def cmd_releases(args: argparse.Namespace) -> int:
    target = Target(args, need_apps=False)
    layout = target.layout
    names = layout.names()
    live = layout.live()
    bad = set(layout.bad())
    back = rl.previous(names, live, bad)
    rows = []
    for name in reversed(names):
        try:
            revision = (layout.releases / name / "REVISION").read_text().strip()
        except OSError:
            revision = ""
        state = "live" if name == live else "previous" if name == back else "bad" if name in bad else ""
        rows.append({"release": name, "revision": revision, "state": state})
    if args.json:
        emit_json({"path": str(layout.root), "releases": rows})
        return 0
    if not rows:
        print(f"no releases in {layout.releases} yet (`corral deploy` makes one)")
        return 0
    for row in rows:
        print(f"{'*' if row['state'] == 'live' else ' '} {row['release']}  {row['revision'][:12]:12}  {row['state']}")
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    """``corral rollback [APP]``: ``current`` to the previous good release, every instance rolled."""
    target = Target(args)
    layout = target.layout
    with Lock(layout, "rollback"):
        names, live = layout.names(), layout.live()
        back = rl.previous(names, live, layout.bad())
        if live is None:
            raise DeployError(f"rollback: nothing is deployed in {layout.root} yet")
        if back is None:
            raise DeployError(f"rollback: there is no release before {live} to go back to")
        switch(layout, back)
        layout.mark_bad(live, "rolled back by hand")
        print(f"current -> releases/{back} (was {live})")
        client = Client()
        for spec in target.apps:
            message = f"rolled back by hand from {live} to {back}"
            client.call("deploy_event", {"target": spec["name"], "step": "rollback", "message": message,
                                         "release": back})
            try:
                result = reload(client, spec["name"])
            except protocol.RemoteError as exc:
                print(f"corral: rollback: {exc.message} (current points at {back})", file=sys.stderr)
                return 1
            for line in result["replaced"]:
                print(f"reloaded {line}")
    return 0


def pm2_verb(args: argparse.Namespace, verb: str) -> int:
    """PM2's other deploy verbs: revert (rollback), list (releases), curr, prev, setup."""
    if verb == "rollback":
        return cmd_rollback(args)
    if verb == "releases":
        return cmd_releases(args)
    target = Target(args, need_apps=False)
    layout = target.layout
    if verb == "setup":
        if layout.prepare():
            with Lock(layout, "setup"):
                run_hooks(layout, "pre-setup", target.config.pre_setup, layout.root, target.config.build_timeout)
        print(f"set up {layout.root} (releases/, shared/)")
        return 0
    live = layout.live()
    found = live if verb == "curr" else rl.previous(layout.names(), live, layout.bad())
    if found is None:
        print(f"corral: no {'live' if verb == 'curr' else 'previous'} release in {layout.root}", file=sys.stderr)
        return 1
    print(found)
    return 0
