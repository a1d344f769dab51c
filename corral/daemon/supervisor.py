"""The supervisor: apps and their instances.  Feeds the lifecycle events, carries out its effects.

All IO the lifecycle asks for happens here or in the modules it calls
(spawner, groups, logpipe, store); the decisions are in ``corral.lifecycle.instance``.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections import deque
from dataclasses import replace
from functools import partial
from typing import Callable

from corral import events as ev
from corral.config.environ import Shared, kept as kept_env
from corral.config.plan import changed_keys
from corral.daemon.core import DaemonCore
from corral.daemon.slots import App, Slot
from corral.daemon.readiness import on_notify, start_probe
from corral.daemon.timers import Handle
from corral.lifecycle import app as am
from corral.lifecycle import instance as lc
from corral.process import procfs
from corral.process.procgroups import GroupWatcher, signal_group, terminate
from corral.logs.pipe import PipeReader, link
from corral.logs.sinks import FileLogs, InstanceLogs, StdoutLogs
from corral.process.reaper import Reaper
from corral.process.listenwatch import ListenWatcher
from corral.process.listeners import SocketRegistry
from corral.process.spawner import Child
from corral.process.tracking import Proc, Tracker, Tree, new_run_id
from corral.daemon import spawns
from corral.daemon.store import Store
from corral.process.usage import UsageSampler
from corral.config.spec import AppSpec

Status = lc.Status
KILL = "kill"  # the slot's kill escalation, kept among its timers while it is stopping
SHUTDOWN = b'"shutdown"\n'  # process.send('shutdown') as Node's IPC channel carries it


class Supervisor:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        store: Store,
        logs: FileLogs | StdoutLogs,
        *,
        python: str = sys.executable,
        core: DaemonCore | None = None,
        whole_env: bool = False,
        tracker: Tracker | None = None,
    ) -> None:
        self.loop = loop
        self.store = store
        self.logs = logs
        self.python = python
        self.whole_env = whole_env  # corral run: nothing is saved, apps keep every variable
        self.shared_env = Shared()  # equal environments of many apps kept once
        self.core = core or DaemonCore(loop)
        self.core.supervisor = self
        self.clock = self.core.clock  # every time the supervisor reads comes from here
        self.timers = self.core.timers
        self.bus = self.core.bus
        self.bus.listen(store.record, stored_only=True)  # the store: the one writer of the history
        store.retry_with(self.timers, lambda: loop.call_soon(spawns.resume_put_off, self))
        self.apps: dict[str, App] = {}
        self.reaper = Reaper()
        self.tracker = tracker or Tracker(new_run_id())
        self.tracker.defer = loop.call_soon  # one /proc scan per turn of the loop, shared
        self.groups = GroupWatcher(self.timers, self.tracker)
        self.sockets = SocketRegistry()
        self.notify_path: str | None = None
        self._pending: deque[tuple[Slot, lc.Event]] = deque()
        self._dispatching = False
        self._changed: asyncio.Future[None] = loop.create_future()
        self.usage = UsageSampler()
        self.listen_watcher = ListenWatcher(self.timers)

    def open_notify_socket(self, path: str) -> None:
        """Listen for sd_notify datagrams; every instance gets NOTIFY_SOCKET=path (or, for an
        app run as another user, a socket that user can reach: ``sdnotify.NotifySockets``)."""
        from corral.process.sdnotify import NotifySockets

        self.notify_sockets = NotifySockets(self.loop, path, partial(on_notify, self))
        self.notify_path = path

    def close(self) -> None:
        """Release the daemon-wide resources (sockets, notify listeners)."""
        self.sockets.close_all()
        self.listen_watcher.close()
        if self.notify_path is not None:
            self.notify_sockets.close()
            self.notify_path = None

    def install_signal_handlers(self) -> None:
        self.loop.add_signal_handler(signal.SIGCHLD, self.on_sigchld)
        self.on_sigchld()

    def on_sigchld(self) -> None:
        self.tracker.forget()  # scan again: these exits are news
        self.reaper.reap()
        self.groups.poke()

    # -- events and effects -------------------------------------------------------------
    def publish(self, event: ev.Event) -> None:
        self.bus.publish(event)

    def dispatch(self, slot: Slot, event: lc.Event) -> None:
        """Queue an event; events raised while applying effects run after the current one."""
        self._pending.append((slot, event))
        if self._dispatching:
            return
        self._dispatching = True
        try:
            with self.store.batch():  # the store writes the events published here in one transaction
                while self._pending:
                    self._step(*self._pending.popleft())
        finally:
            self._dispatching = False
        self._notify()

    def _step(self, slot: Slot, event: lc.Event) -> None:
        """Feed one event to the lifecycle; publish the change of status, carry out the effects."""
        before = slot.state.status
        slot.state, effects = lc.step(slot.state, event, self.clock.monotonic(), slot.app.policy)
        after = slot.state.status
        if before is Status.STOPPING and after is not before:
            self._cancel_timer(slot, KILL)  # the stop is over: nothing left to escalate
        for effect in effects:
            self._apply(slot, effect)
        if after is not before and self.bus.wants(ev.StateChanged):  # after the effects that caused it
            self.publish(ev.StateChanged(app=slot.app.name, instance=slot.index, old=before.value, new=after.value,
                                         expected=not lc.unexpected(event, before, after),
                                         cause=type(event).__name__))

    def _apply(self, slot: Slot, effect: lc.Effect) -> None:
        match effect:
            case lc.Spawn():
                self._spawn(slot)
            case lc.Signal(signal=sig):
                if slot.pgid is not None:
                    signal_group(slot.pgid, sig)
            case lc.Terminate(signal=sig, kill_timeout=timeout):
                if slot.tree is not None:
                    self._cancel_timer(slot, KILL)
                    asked = slot.ipc is not None and slot.app.spec.shutdown_with_message and slot.ipc.send(SHUTDOWN)
                    # PM2's shutdown_with_message: 'shutdown' on the channel instead of the signal
                    slot.timers[KILL] = self.terminate(slot.tree, None if asked else sig, timeout, slot.app.name,
                                                       slot.index)
            case lc.ArmTimer(name=name, delay=delay):
                self._cancel_timer(slot, name)
                fire = partial(self.dispatch, slot, lc.TimerFired(name))
                if name == lc.WATCHDOG_TIMER:  # H4: what it was doing first (a few seconds at most)
                    fire = partial(self._silent, slot)
                slot.timers[name] = self.timers.after(delay, fire)
            case lc.CancelTimer(name=name):
                self._cancel_timer(slot, name)
            case lc.KillLeftovers():  # the tree outlived its main process; the slot moves on
                if slot.tree is not None:
                    policy = slot.app.policy
                    self.terminate(slot.tree, policy.stop_signal, policy.kill_timeout, slot.app.name, slot.index,
                                   until_gone=True)
            case lc.WatchGroup():
                if slot.tree is not None:
                    self.groups.watch(slot.tree, partial(self.dispatch, slot, lc.GroupGone()))
            case lc.Removed():
                self._remove(slot)
            case lc.StartProbe():
                start_probe(self, slot)
            case lc.WatchListen():
                self._watch_listen(slot)
            case lc.Record(kind=kind, message=message, data=data):
                self.publish(ev.from_record(slot.app.name, slot.index, kind, message, data))

    def terminate(self, tree: Tree, sig: str | None, kill_timeout: float, app: str, index: int | None,
                  until_gone: bool = False, members: list[Proc] | None = None) -> Handle:
        """End a tree (``procgroups.terminate``, recorded as ``kill`` if it escalates); the escalation
        is cancelled when the lifecycle leaves STOPPING or, ``until_gone``, when the tree is empty."""
        kill = ev.Note(app=app, instance=index, kind="kill", message="kill_timeout passed: SIGKILL to the process group")
        handle = terminate(self.timers, self.tracker, tree, sig, kill_timeout, partial(self.publish, kill), members)
        if until_gone and not handle.cancelled:
            self.groups.watch(tree, handle.cancel)
        return handle

    def _silent(self, slot: Slot) -> None:
        """The watchdog fired: capture the evidence, then let the lifecycle restart the instance,
        unless a WATCHDOG=1 re-armed the timer meanwhile (``corral.daemon.ops.profile``)."""
        from corral.daemon.ops.profile import evidence_then

        handle = slot.timers.get(lc.WATCHDOG_TIMER)

        def restart() -> None:
            if slot.timers.get(lc.WATCHDOG_TIMER) is handle:
                self.dispatch(slot, lc.TimerFired(lc.WATCHDOG_TIMER))

        evidence_then(self, slot, f"watchdog: no WATCHDOG=1 for {slot.app.policy.watchdog:g}s", restart)

    @staticmethod
    def _cancel_timer(slot: Slot, name: str) -> None:
        handle = slot.timers.pop(name, None)
        if handle is not None:
            handle.cancel()

    def _spawn(self, slot: Slot) -> None:
        started = spawns.start(self, slot)  # argv, environment, sockets, logs, the fork
        if started is None:
            return
        child, tree, logs, env = started
        slot.env = env if slot.app.policy.ready_mode == "probe" else {}  # only cmd probes need it
        slot.spawn_error = None
        slot.child = child
        slot.pgid = child.pid
        slot.start_ticks = procfs.start_ticks(child.pid)
        slot.started_wall = self.clock.now()
        slot.tree = tree
        self.store.tree_started(tree.marker, child.pid, slot.start_ticks, tree.cgroup)
        self._attach_logs(slot, child, logs)
        slot.log_paths = self.logs.paths(slot.app.spec, slot.index)
        self.reaper.watch(child.pid, partial(self._on_exit, slot, child, tree))
        self._save_instance(slot)
        self.dispatch(slot, lc.Spawned(child.pid))

    def _watch_listen(self, slot: Slot) -> None:
        child = slot.child
        if child is None:
            return

        def wanted() -> bool:
            return slot.child is child and slot.status is Status.ONLINE and not slot.state.ready

        self.listen_watcher.watch(child.pid, partial(self.dispatch, slot, lc.Ready()), wanted)

    def _attach_logs(self, slot: Slot, child: Child, logs: InstanceLogs) -> None:
        open_readers = [2]

        def one_closed() -> None:
            open_readers[0] -= 1
            if open_readers[0] == 0:
                logs.close()

        out = PipeReader(self.loop, child.stdout, logs.out, max_line=logs.max_line, on_eof=one_closed)
        err = PipeReader(self.loop, child.stderr, logs.err, max_line=logs.max_line, keep_tail=True,
                         on_eof=one_closed)
        link(out, err)
        child.readers = (out, err)
        slot.stderr = err

    def _on_exit(self, slot: Slot, child: Child, tree: Tree, pid: int, code: int | None, sig: str | None) -> None:
        child.popen.returncode = code if code is not None else -1
        for reader in child.readers:
            reader.drain()
        if slot.child is child:
            self._report_exit(slot, child, code, sig)
        alive = self.tracker.alive(tree)  # its group, and whatever left the group
        if alive:
            self.groups.watch(tree, partial(spawns.over, self, tree))
        else:
            spawns.over(self, tree)
        slot.last_exit = {"code": code, "signal": sig, "at": self.clock.now(), "pid": pid}
        if slot.child is child:
            slot.child = None
            if slot.ipc is not None:
                slot.ipc.close()
                slot.ipc = None
        event = lc.Exited(code, sig, alive)
        self.dispatch(slot, event)
        self._save_instance(slot)

    def _report_exit(self, slot: Slot, child: Child, code: int | None, sig: str | None) -> None:
        """Publish the exit of a stopping instance (the lifecycle records the others), or a crash."""
        if slot.status is Status.STOPPING:
            self.publish(ev.InstanceExited(app=slot.app.name, instance=slot.index, code=code, signal=sig, pid=child.pid,
                                           expected=True, message=f"{lc.Exited(code, sig).describe()} while stopping"))
        else:
            from corral.logs.crashreport import crash_event  # loaded at the first crash

            if (crash := crash_event(slot, code, sig)) is not None:  # an unrequested failure
                self.publish(crash)

    def _save_instance(self, slot: Slot) -> None:
        running = slot.child is not None
        self.store.put_instance(
            slot.app.name, slot.uid,
            slot.child.pid if running else None,  # type: ignore[union-attr]
            slot.pgid if running else None,
            slot.start_ticks if running else None,
            slot.started_wall if running else None,
            slot.state.restarts,
        )

    def _remove(self, slot: Slot) -> None:
        app = slot.app
        if slot in app.slots:
            app.slots.remove(slot)
        self.store.drop_instance(app.name, slot.uid)
        if slot.probe is not None:
            slot.probe.cancel()
        if app.deleting and not app.slots:
            self.apps.pop(app.name, None)
            self.store.delete_app(app.name)
            self.sockets.release_app(app.name)
            app.log_loss.end()  # what a full disk kept out of its logs, reported before it goes
            self.publish(ev.AppRemoved(app=app.name))
        elif slot.index >= app.spec.instances and not any(s.index == slot.index for s in app.slots):
            self.sockets.release_slot(app.name, slot.index)
            app.log_loss.end(slot.index)
            if app.inferred:
                from corral.daemon.nodeapps import forget_slot

                forget_slot(self, app, slot.index)

    # -- waiting ------------------------------------------------------------------------
    def _notify(self) -> None:
        if not self._changed.done():
            self._changed.set_result(None)
        self._changed = self.loop.create_future()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``predicate()`` holds after some state change, or the timeout passes
        (a timer of the timer service, so it runs on the injected clock)."""
        if predicate():
            return True
        expired: asyncio.Future[None] = self.loop.create_future()
        handle = self.timers.after(timeout, expired.cancel)  # cancelled = timed out
        try:
            while not predicate():
                if expired.done():
                    return False
                await asyncio.wait((self._changed, expired), return_when=asyncio.FIRST_COMPLETED)
        finally:
            handle.cancel()
        return True

    # -- apps ---------------------------------------------------------------------------
    def add_app(self, spec: AppSpec, base_env: dict[str, str], app_id: int | None = None,
                inferred: dict[str, list[int]] | None = None) -> App:
        """A new app; with ``app_id``, one a new daemon restores from the store (with the addresses
        its Node instances listened on, ``inferred``)."""
        restored = app_id is not None
        if app_id is None:
            app_id = max([a.id for a in self.apps.values()] + [self.store.next_app_id() - 1]) + 1
        app = App(spec.name, app_id, spec, self.shared_env(kept_env(base_env, spec.env_inherit, self.whole_env)))
        app.log_loss.publish = self.publish  # LogDropped, when an app's log file takes writes again
        if inferred and app.node_cluster:
            app.inferred = inferred
        self.apps[app.name] = app
        self.store.put_app(app.name, app.id, app.stored_spec(), app.desired)
        self.publish(ev.AppAdded(app=app.name, app_id=app.id, restored=restored))
        self.resize(app)
        return app

    def update_app(self, app: App, spec: AppSpec, base_env: dict[str, str] | None = None) -> None:
        changed = changed_keys(app.spec.to_dict(), spec.to_dict())
        if changed:
            self.publish(ev.AppChanged(app=app.name, keys=tuple(sorted(changed))))
        app.set_spec(spec)
        if app.inferred and not app.node_cluster:
            from corral.daemon.nodeapps import forget_all

            forget_all(self, app)
        app.base_env = self.shared_env(kept_env(app.base_env if base_env is None else base_env, spec.env_inherit,
                                                  self.whole_env))
        self.store.put_app(app.name, app.id, app.stored_spec(), app.desired)

    def set_desired(self, app: App, desired: str) -> None:
        app.state = am.set_desired(app.state, am.Desired(desired))
        self.store.set_desired(app.name, desired)

    def start(self, app: App, by: str = "") -> None:
        self.set_desired(app, "online")
        self.resize(app)
        for slot in list(app.slots):
            self.dispatch(slot, lc.Start(by))

    def stop(self, app: App, after: lc.After = lc.After.STOP, by: str = "") -> None:
        if after is lc.After.STOP:
            self.set_desired(app, "stopped")
        if after is lc.After.DELETE:
            app.state = replace(app.state, deleting=True)
            if not app.slots:
                self.apps.pop(app.name, None)
                self.store.delete_app(app.name)
                app.log_loss.end()
                self.publish(ev.AppRemoved(app=app.name))
        for slot in list(app.slots):
            self.dispatch(slot, lc.Stop(after, by))

    def add_slot(self, app: App, index: int) -> Slot:
        """A new, stopped slot at INDEX (a reload's replacement shares the index of the old one)."""
        slot = Slot(app, index)
        app.slots.append(slot)
        app.slots.sort(key=lambda s: (s.index, s.uid))
        return slot

    def resize(self, app: App) -> None:
        """Match the slots to ``instances`` (``lifecycle.app.resize``): new ones start, extra ones go."""
        for action in am.resize(app.state, app.slot_infos()):
            match action:
                case am.AddSlot(index=index, start=start):
                    slot = self.add_slot(app, index)
                    if start:
                        self.dispatch(slot, lc.Start())
                case am.RemoveSlot(uid=uid):
                    for slot in [s for s in app.slots if s.uid == uid]:
                        self.dispatch(slot, lc.Stop(lc.After.DELETE))

    def signal(self, app: App, sig: str) -> int:
        sent = 0
        for slot in app.slots:
            if slot.child is not None and slot.pgid is not None and signal_group(slot.pgid, sig):
                sent += 1
        return sent

    def sample_usage(self) -> dict[int, tuple[float, int]]:
        """CPU % and RSS of every running instance's process group (see ``daemon.usage``)."""
        pgids = {s.pgid for a in self.apps.values() for s in a.slots if s.child is not None and s.pgid}
        return self.usage.sample(pgids)
