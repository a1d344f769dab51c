"""Zero-downtime rolling reload: carries out the pure planner's actions (``lifecycle.rollout``).

The planner decides (start new, retire old, discard failed, next batch); this
module creates the slots, dispatches the lifecycle events and reports back
what it sees: a new instance ready or failed, an old one gone, time passing,
the app stopped by someone else.  The new instance of a slot shares the slot's
listening socket with the old one, so no connection is refused while they
overlap; a new instance that fails leaves the old ones serving.
"""

from __future__ import annotations

from corral.events import ReloadProgress
from corral.exceptions import OperationFailed
from corral.lifecycle.exits import describe_exit
from corral.daemon.supervisor import App, Slot, Status, Supervisor
from corral.lifecycle import instance as lc
from corral.lifecycle import rollout as ro

MARGIN = 5.0


class ReloadFailed(OperationFailed):
    """The reload stopped; the message says which instance failed and why."""


def _failed(slot: Slot) -> bool:
    """The new instance exited, was not ready in time, or could not start."""
    return slot.last_exit is not None or slot.status in (
        Status.ERRORED, Status.WAITING_RESTART, Status.STOPPING, Status.STOPPED)


def _why(slot: Slot) -> str:
    if slot.spawn_error:
        return f"could not start: {slot.spawn_error}"
    last = slot.last_exit
    if last is not None:
        return f"{describe_exit(last.get('code'), last.get('signal'), verb=True)} before it was ready"
    return f"was not ready within {slot.app.policy.ready_wait():g}s ({slot.app.policy.ready_mode})"


class _Executor:
    def __init__(self, sup: Supervisor, app: App) -> None:
        self.sup = sup
        self.app = app
        self.slots: dict[int, Slot] = {s.uid: s for s in app.slots}
        self.leaving: set[int] = set()  # retired or discarded, not gone yet
        self.pids: dict[int, int | None] = {}  # uid -> the pid it had

    def apply(self, rollout: ro.Rollout, actions: list[ro.Action]) -> ro.Rollout:
        for action in actions:
            match action:
                case ro.StartNew(index=index):
                    old = next((s for s in self.app.slots if s.index == index), None)
                    new = self.sup.add_slot(self.app, index)
                    if old is not None:  # a reload counts as a restart, as in PM2
                        new.state = lc.Instance(restarts=old.state.restarts + 1)
                    self.slots[new.uid] = new
                    self.sup.dispatch(new, lc.Start())
                    rollout, more = ro.step(rollout, ro.Started(index, new.uid))
                    rollout = self.apply(rollout, more)
                case ro.Retire(uid=uid) | ro.Discard(uid=uid):
                    slot = self.slots[uid]
                    live = slot.child.pid if slot.child else None
                    exited = (slot.last_exit or {}).get("pid")
                    # the pid that served (retired) or the one that failed (discarded)
                    self.pids[uid] = (live or exited) if isinstance(action, ro.Retire) else (exited or live)
                    self.leaving.add(uid)
                    self.sup.dispatch(slot, lc.Stop(lc.After.DELETE))
        return rollout

    def observe(self, rollout: ro.Rollout) -> list[ro.Event]:
        """What happened since the last look, as planner events (none: nothing new)."""
        now = self.sup.clock.monotonic()
        if self.app.desired != "online" or self.app.deleting:
            return [ro.Cancel()]
        events: list[ro.Event] = []
        for pair in rollout.batch:
            new = self.slots.get(pair.new) if pair.new is not None else None
            if new is None or pair.ready or pair.failed is not None:
                continue
            if _failed(new):
                events.append(ro.NewFailed(new.uid, _why(new)))
            elif new.status is Status.ONLINE and new.state.ready:
                events.append(ro.NewReady(new.uid))
        gone = [uid for uid in self.leaving if self.slots[uid] not in self.app.slots]
        events += [ro.Gone(uid, now) for uid in gone]
        self.leaving.difference_update(gone)
        if rollout.deadline is not None and now >= rollout.deadline:
            events.append(ro.Tick(now))
        return events

    def timeout(self, rollout: ro.Rollout) -> float:
        if rollout.deadline is not None:
            return max(0.0, rollout.deadline - self.sup.clock.monotonic())
        return self.app.policy.kill_timeout + MARGIN


async def rolling_reload(sup: Supervisor, app: App, surge: int = 1, only: set[int] | None = None) -> list[str]:
    """Replace every instance of APP (those numbered in ONLY), SURGE at a time; one line per
    replaced instance."""
    run = _Executor(sup, app)
    old = [(s.index, s.uid) for s in app.slots if only is None or s.index in only]
    rollout, actions = ro.start(old, surge, app.policy.ready_wait() + MARGIN, sup.clock.monotonic())
    rollout = run.apply(rollout, actions)
    while rollout.phase not in ro.ENDED:
        seen: list[ro.Event] = []

        def changed(seen: list[ro.Event] = seen, rollout: ro.Rollout = rollout) -> bool:
            seen.extend(run.observe(rollout))
            return bool(seen)

        if not await sup.wait_for(changed, run.timeout(rollout)) and rollout.deadline is None:
            raise ReloadFailed(f'reload of "{app.name}": old instances did not stop in time')
        done = len(rollout.done)
        for event in seen:
            rollout, actions = ro.step(rollout, event)
            rollout = run.apply(rollout, actions)
        for pair in rollout.done[done:]:
            sup.publish(ReloadProgress(app=app.name, instance=pair.index, step="replaced", message=_line(app, pair, run)))
    return _outcome(app, rollout, run)


def _line(app: App, pair: ro.Pair, run: _Executor) -> str:
    new = run.slots[pair.new] if pair.new is not None else None
    return f"{app.name}[{pair.index}]: pid {run.pids.get(pair.old)} -> {new.child.pid if new and new.child else None}"


def _outcome(app: App, rollout: ro.Rollout, run: _Executor) -> list[str]:
    replaced = [_line(app, p, run) for p in rollout.done]
    if rollout.phase is ro.Phase.CANCELLED:
        raise ReloadFailed(f'reload of "{app.name}" stopped: the app was stopped meanwhile')
    failure = rollout.failure
    if rollout.phase is ro.Phase.FAILED and failure is not None:
        pid = run.pids.get(failure.new) if failure.new is not None else None
        done = f"; {len(rollout.done)} instance(s) were replaced before" if rollout.done else ""
        raise ReloadFailed(
            f'reload of "{app.name}" stopped: new instance {failure.index} (pid {pid}) {failure.failed}; '
            f"the old instances keep serving{done}")
    return replaced
