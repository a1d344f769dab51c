"""``corral deploy``: a git ref (or a directory) to a health-verified, reversible release.

Runs here, in the CLI process, calling daemon operations (``start``, ``reload``, ``events``,
``deploy_event``): fetching, building and the bake window take minutes, and none of it may hold
the daemon's loop or cost the daemon memory; each daemon call stays short (or is a ``long``
reload with keep-alives), so no CLI timeout is ever stretched.  The decisions are pure
(``deploy.releases``); the files are ``deploy.switch``'s.  If this process is killed during the
bake, ``current`` stays on the new release (``corral rollback`` goes back by hand).
"""

from __future__ import annotations

import argparse
import os
import sys
import shutil
import time
from pathlib import Path
from typing import Any

from corral.cli.main import emit_json, warn
from corral.cli.parser import UsageError
from corral.control import protocol
from corral.control.client import Client
from corral.deploy import releases as rl
from corral.deploy.config import DeployConfig, DeployConfigError, environments, parse
from corral.exceptions import OperationFailed
from corral.deploy.switch import DeployError, Layout, Lock, fetch, link_shared, place, prune, run_hooks, switch

DEFAULT_FILES = ("corral.toml", "corral.yaml", "corral.yml", "corral.json", "ecosystem.config.js",
                 "ecosystem.config.cjs", "ecosystem.json")
POLL = 0.25  # seconds between two looks at the events in the bake window
EVENTS = 300  # the latest events of each app read at each look (the bake reads those since the switch)
BUSY = "try again when it ends"  # the daemon's refusal while another mutation holds an app
START_MARGIN = 10.0  # seconds past ready_timeout a first start may take
BUSY_WAIT = 120.0  # seconds a rollout waits for such a mutation to end


class Target:
    """What a deploy command acts on: the file, its deploy settings, the apps that run from
    ``<path>/current`` (their specs, unchecked), and the layout."""

    def __init__(self, args: argparse.Namespace, need_apps: bool = True) -> None:
        from corral.config.errors import ConfigError
        from corral.config.load import load_file, read_document

        words = list(getattr(args, "targets", None) or [])
        files = [w for w in words if _is_file(w)]
        names = [w for w in words if not _is_file(w)]
        if len(files) > 1 or len(names) > 1:
            raise UsageError("deploy takes one file and one app or environment (`corral deploy production`)")
        self.file = files[0] if files else (args.file or _default_file())
        try:
            doc = read_document(self.file)
            raw = doc.get("deploy") if isinstance(doc, dict) else None
            name = names[0] if names else None
            env = name if name is not None and name in environments(raw) else None
            self.config: DeployConfig = parse(raw, self.file, env)
            self.specs = load_file(self.file, env_name=args.env)
        except (ConfigError, DeployConfigError) as exc:
            raise UsageError(str(exc)) from None
        self.ignored = self.config.ignored
        root = self.config.path if os.path.isabs(self.config.path) else \
            os.path.join(os.path.dirname(os.path.abspath(self.file)), self.config.path)
        self.layout = Layout(os.path.normpath(root))
        self.apps = self._apps(None if env is not None or name in (None, "all") else name) if need_apps else []

    def _apps(self, only: str | None) -> list[dict[str, Any]]:
        current = str(self.layout.current)
        runs_here = [s for s in self.specs if s["cwd"] == current or s["cwd"].startswith(current + "/")]
        if only is not None:
            runs_here = [s for s in runs_here if s["name"] == only]
            if not runs_here:
                raise UsageError(f'{self.file}: no app "{only}" runs from {current} (set its cwd to {current})')
        if not runs_here:
            raise UsageError(f"{self.file}: no app runs from {current}: set the apps' cwd to {current}")
        return runs_here


def _is_file(word: str) -> bool:
    from corral.cli.start import is_config_file

    return is_config_file(word) and os.path.isfile(word)


def _default_file() -> str:
    for name in DEFAULT_FILES:
        if os.path.isfile(name):
            return name
    raise UsageError(f"no ecosystem file here ({', '.join(DEFAULT_FILES[:1] + DEFAULT_FILES[4:5])}); "
                     "name one: `corral deploy --file FILE`")


#: PM2's ``pm2 deploy <file> <env> <verb>``: the verb after the environment
PM2_VERBS = {"update": "update", "revert": "rollback", "list": "releases", "curr": "curr", "current": "curr",
             "prev": "prev", "previous": "prev", "setup": "setup"}


def cmd_deploy(args: argparse.Namespace) -> int:
    names = [w for w in args.targets if not _is_file(w)]
    if len(names) == 2 and names[1] in PM2_VERBS:  # PM2's `deploy production revert`
        verb = PM2_VERBS[names[1]]
        args.targets = [w for w in args.targets if w != names[1]]
        if verb != "update":
            from corral.cli.releases import pm2_verb

            return pm2_verb(args, verb)
    target = Target(args)
    layout = target.layout
    config = target.config
    if target.ignored:
        warn(f"warning: deploy: not used by corral, ignored: {', '.join(target.ignored)}")
    first = layout.prepare()
    with Lock(layout, "deploy"):
        here = os.path.dirname(os.path.abspath(target.file))
        if first:
            run_hooks(layout, "pre-setup", config.pre_setup, layout.root, config.build_timeout)
        run_hooks(layout, "pre-deploy-local", config.pre_deploy_local, Path(here),
                  config.build_timeout)
        layout.log(f"deploy {config.repo} {config.ref} ({', '.join(s['name'] for s in target.apps)})")
        incoming, revision = fetch(layout, config.repo, config.ref)
        name = place(layout, incoming, revision, time.time())
        try:
            link_shared(layout, name, config.shared)
            run_hooks(layout, "build", config.build, layout.releases / name, config.build_timeout,
                      {"RELEASE": name, "SHARED": str(layout.shared)})
        except (DeployError, OSError, KeyboardInterrupt) as exc:  # a release never built is no release
            shutil.rmtree(layout.releases / name, ignore_errors=True)
            layout.log(f"release {name} discarded: {exc or 'interrupted'}")
            if isinstance(exc, KeyboardInterrupt):
                raise
            raise DeployError(str(exc) if isinstance(exc, DeployError) else f"deploy: {exc}") from None
        run = Run(target, name, args)
        status = run.go()
        if status == 0:
            _post_deploy(target, name)
            prune(layout, config.keep_releases)
        return status


def _post_deploy(target: Target, name: str) -> None:
    try:
        run_hooks(target.layout, "post-deploy", target.config.post_deploy, target.layout.current,
                  target.config.build_timeout, {"RELEASE": name, "SHARED": str(target.layout.shared)})
    except DeployError as exc:
        warn(f"{exc} (the release is live)")


class Run:
    """One deploy after its build: carries out the pure plan's actions against the daemon."""

    def __init__(self, target: Target, name: str, args: argparse.Namespace) -> None:
        self.target, self.name = target, name
        self.layout = target.layout
        self.client = Client(autostart=True)
        self.canary = max(0, int(getattr(args, "canary", 0) or 0))
        self.bake = args.bake if getattr(args, "bake", None) is not None else target.config.bake
        self.quiet = bool(getattr(args, "json", False))
        self.known = {row["name"]: row for row in self.client.call("ls")}
        self.names = [s["name"] for s in target.apps]
        self.since = time.time()
        self.rolled: set[int] = set()
        self.started: list[str] = []  # apps this deploy started (its first)

    def say(self, text: str) -> None:
        self.layout.log(text)
        self.show(text)

    def show(self, text: str) -> None:
        if not self.quiet:
            print(text, flush=True)

    def count(self, app: str) -> int:
        rows = [r for r in self.client.call("ls") if r["name"] == app]
        if rows:
            return len(rows)
        spec = next(s for s in self.target.apps if s["name"] == app)
        return int(spec.get("instances") or 1)

    def go(self) -> int:
        live = self.layout.live()
        instances = max(self.count(app) for app in self.names)
        plan, actions = rl.start(self.name, live, instances, self.canary, self.bake)
        self.event("started", f"deploying {self.name} (from {live or 'nothing'})")
        while actions:
            action = actions.pop(0)
            if isinstance(action, rl.Switch):
                self.since = time.time()
                switch(self.layout, action.release)  # deploy.log has the line
                self.show(f"current -> releases/{action.release}")
            elif isinstance(action, rl.Finish):
                self.event("done", f"deployed {self.name}")
                self.say(f"deployed {self.name}: {', '.join(self.names)} run releases/{self.name}")
                self.summary(live, None)
                return 0
            elif isinstance(action, rl.Fail):
                reason = action.reason if plan.previous else action.reason + self.abandon()
                self.event("rolled_back" if plan.previous else "failed", f"deploy of {self.name} failed: {reason}",
                           failed=True)
                self.summary(live, reason)
                print(f"corral: deploy of {self.name} failed: {reason}", file=sys.stderr)
                return 1
            else:
                plan, actions = rl.step(plan, self.carry_out(action))
        return 1

    def abandon(self) -> str:
        """A first deploy that failed: the apps it started are deleted and ``current`` removed (no
        release was ever good here); what was done, for the failure line."""
        self.layout.mark_bad(self.name, "first deploy failed")
        for app in self.started:
            try:
                self.client.call("delete", {"target": app})
            except (protocol.RemoteError, OperationFailed):
                return f"; {app} could not be deleted"
        try:
            os.unlink(self.layout.current)
        except OSError:
            pass
        return f"; deleted {', '.join(self.started)}" if self.started else ""

    def carry_out(self, action: rl.Action) -> rl.Outcome:
        """A roll, the bake or the revert; the daemon going away or Ctrl-C is a failed outcome, so
        the plan still switches back."""
        try:
            match action:
                case rl.Roll(start=start, stop=stop):
                    return self.roll(start, stop)
                case rl.Bake(seconds=seconds, start=start, stop=stop):
                    return self.watch(seconds, start, stop)
                case rl.Revert(release=release):
                    return self.revert(release)
        except protocol.RemoteError as exc:
            return rl.Outcome(False, exc.message)
        except OperationFailed as exc:  # the daemon went away, or did not answer in time
            return rl.Outcome(False, str(exc))
        except KeyboardInterrupt:
            return rl.Outcome(False, "interrupted (Ctrl-C)")
        return rl.Outcome(False, f"unexpected step {action}")

    def summary(self, previous: str | None, failure: str | None) -> None:
        if self.quiet:
            emit_json({"release": self.name, "previous": previous, "live": self.layout.live(),
                       "ok": failure is None, "reason": failure, "apps": self.names})

    def event(self, step: str, message: str, failed: bool = False) -> None:
        for app in self.names:
            try:
                self.client.call("deploy_event", {"target": app, "step": step, "message": message,
                                                  "release": self.name, "failed": failed})
            except protocol.RemoteError:
                pass

    def roll(self, start: int, stop: int | None) -> rl.Outcome:
        """Replace instances START..STOP of each app (start an app the daemon does not run yet)."""
        for app in self.names:
            if app not in self.known:
                outcome = self.start_app(app)
            else:
                last = self.count(app) if stop is None else min(stop, self.count(app))
                indices = list(range(start, last))
                if not indices:
                    continue
                outcome = self.replace(app, indices, "reloaded")
                if outcome.ok:
                    self.rolled.update(indices)
            if not outcome.ok:
                return outcome
        return rl.Outcome(True)

    def start_app(self, app: str) -> rl.Outcome:
        from corral.cli.start import base_env, load_config

        try:
            specs = load_config(self.target.file, None, app)
            result = self.client.call("start", {"apps": specs, "base_env": base_env(specs)})
        except (UsageError, protocol.RemoteError) as exc:
            return rl.Outcome(False, getattr(exc, "message", str(exc)))
        if result.get("errors"):
            return rl.Outcome(False, "; ".join(result["errors"]))
        self.known[app] = result["rows"][0]
        self.started.append(app)
        wait = max(float(s.get("ready_timeout") or 30) for s in specs) + START_MARGIN
        problem = self.until_online(app, time.monotonic() + wait)
        if problem is not None:
            return rl.Outcome(False, problem)
        self.say(f"started {app} ({len(result['rows'])} instance(s))")
        return rl.Outcome(True)

    def until_online(self, app: str, deadline: float) -> str | None:
        """Wait until every instance of a newly started APP is online (ready); why not, else."""
        while True:
            rows = [r for r in self.client.call("ls") if r["name"] == app]
            for row in rows:
                if row["status"] in ("errored", "stopped", "waiting_restart") or row["restarts"]:
                    return f"{app}[{row['instance']}] exited before it was ready (see `corral logs {app}`)"
            if rows and all(r["status"] == "online" for r in rows):
                return None
            if time.monotonic() >= deadline:
                return f"{app} was not online within {START_MARGIN:g}s past its ready_timeout"
            time.sleep(POLL)

    def watch(self, seconds: float, start: int, stop: int | None) -> rl.Outcome:
        """The bake window: the events of the new instances, every POLL seconds, until SECONDS pass
        or one says the release is bad."""
        which = range(start, stop if stop is not None else 1 << 30)
        what = f"instance(s) {start}..{stop - 1}" if stop is not None else "every instance"
        self.say(f"baking {seconds:g}s: watching {what} of {', '.join(self.names)}")
        deadline = time.monotonic() + seconds
        while True:
            events: list[dict[str, Any]] = []
            for app in self.names:
                events += self.client.call("events", {"target": app, "limit": EVENTS})
            why = rl.bake_verdict(events, self.since, self.names, which)
            if why is not None:
                return rl.Outcome(False, why)
            if time.monotonic() >= deadline:
                return rl.Outcome(True)
            time.sleep(min(POLL, max(0.0, deadline - time.monotonic())))

    def revert(self, release: str) -> rl.Outcome:
        """``current`` back to RELEASE, then the instances that run the new one replaced."""
        switch(self.layout, release)
        self.layout.mark_bad(self.name, "rolled back")
        self.show(f"current -> releases/{release} (rolled back)")
        for app in self.names:
            indices = sorted(self.rolled | on_release(self.client, app, self.layout, self.name))
            indices = [i for i in indices if i < self.count(app)]
            if not indices:
                continue
            outcome = self.replace(app, indices, "rolled back")
            if not outcome.ok:
                return outcome
        return rl.Outcome(True)

    def replace(self, app: str, indices: list[int], done: str) -> rl.Outcome:
        """A rolling reload of INDICES of APP, each replaced instance said (``done`` app[i] ...)."""
        try:
            result = reload(self.client, app, indices)
        except protocol.RemoteError as exc:
            return rl.Outcome(False, exc.message)
        for line in result["replaced"]:
            self.say(f"{done} {line}")
        return rl.Outcome(True)


def reload(client: Client, app: str, indices: list[int] | None = None, wait: float = BUSY_WAIT) -> Any:
    """A rolling reload of APP (of INDICES); while another mutation holds the app (a liveness
    replacement, a crash restart), asked again until WAIT seconds have passed."""
    request: dict[str, Any] = {"target": app}
    if indices is not None:
        request["only"] = ",".join(map(str, indices))
    deadline = time.monotonic() + wait
    while True:
        try:
            return client.call("reload", request)
        except protocol.RemoteError as exc:
            if BUSY not in exc.message or time.monotonic() >= deadline:
                raise
        time.sleep(POLL)


def on_release(client: Client, app: str, layout: Layout, name: str) -> set[int]:
    """The instances of APP whose process runs in release NAME (their working directory)."""
    where = os.path.realpath(layout.releases / name)
    found = set()
    for row in client.call("ls"):
        if row["name"] != app or not row.get("pid"):
            continue
        try:
            cwd = os.readlink(f"/proc/{row['pid']}/cwd")
        except OSError:
            continue
        if cwd == where or cwd.startswith(where + "/"):
            found.add(int(row["instance"]))
    return found
