"""The rolling-reload planner, pure: which instance to start, retire or discard next.

A rollout replaces every instance of an app, ``surge`` indices at a time: for
each index of a batch a new instance starts beside the old one (they share the
slot's socket); once every new instance of the batch is ready, the old ones are
retired (stopped and forgotten); once they are gone, the next batch starts.

If a new instance fails (exits, is not ready in time, cannot start) the rollout
stops: the failed new instances are discarded and the old ones keep serving.
A new instance that did become ready in that batch still replaces its old one.
A cancelled rollout (the app was stopped or deleted meanwhile) ends at once and
discards the new instances that have not replaced their old ones yet.

``start(...)`` and ``step(rollout, event)`` return the new rollout and a list of
actions; the daemon carries them out and feeds back what happened.  Time comes
in with ``Tick(now)``: a batch not ready by its deadline has failed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, Callable


class Phase(StrEnum):
    STARTING = "starting"  # the batch's new instances are booting
    RETIRING = "retiring"  # they are ready; the old ones are stopping
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


ENDED = frozenset({Phase.DONE, Phase.FAILED, Phase.CANCELLED})


@dataclass(frozen=True)
class Pair:
    index: int
    old: int  # slot uid of the instance being replaced
    new: int | None = None  # slot uid of its replacement, once started
    ready: bool = False
    failed: str | None = None  # why the new instance failed
    old_gone: bool = False


@dataclass(frozen=True)
class Rollout:
    todo: tuple[tuple[int, int], ...]  # (index, old uid) not started yet
    batch: tuple[Pair, ...] = ()
    done: tuple[Pair, ...] = ()
    surge: int = 1
    wait: float = 0.0  # how long a batch may take to become ready
    deadline: float | None = None
    phase: Phase = Phase.STARTING
    failure: Pair | None = None


# -- actions ------------------------------------------------------------------------------
@dataclass(frozen=True)
class StartNew:
    """Start a new instance at INDEX beside the old one; report ``Started(index, uid)``."""

    index: int


@dataclass(frozen=True)
class Retire:
    """Stop the old instance UID and forget it."""

    uid: int


@dataclass(frozen=True)
class Discard:
    """Stop the failed new instance UID and forget it."""

    uid: int


Action = StartNew | Retire | Discard


# -- events -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Started:
    index: int
    uid: int


@dataclass(frozen=True)
class NewReady:
    uid: int


@dataclass(frozen=True)
class NewFailed:
    uid: int
    reason: str


@dataclass(frozen=True)
class Gone:
    """A retired or discarded instance has no process left (at NOW)."""

    uid: int
    now: float


@dataclass(frozen=True)
class Tick:
    now: float


@dataclass(frozen=True)
class Cancel:
    pass


Event = Started | NewReady | NewFailed | Gone | Tick | Cancel
Result = tuple[Rollout, list[Action]]


def start(old: list[tuple[int, int]], surge: int, wait: float, now: float) -> Result:
    """Plan the replacement of OLD ``(index, uid)`` pairs, SURGE at a time."""
    rollout = Rollout(todo=tuple(sorted(old)), surge=max(1, surge), wait=wait)
    return _next_batch(rollout, now)


def _next_batch(r: Rollout, now: float) -> Result:
    if not r.todo:
        return replace(r, batch=(), phase=Phase.DONE, deadline=None), []
    taken, rest = r.todo[: r.surge], r.todo[r.surge :]
    batch = tuple(Pair(index, uid) for index, uid in taken)
    r = replace(r, todo=rest, batch=batch, phase=Phase.STARTING, deadline=now + r.wait)
    return r, [StartNew(p.index) for p in batch]


def step(r: Rollout, event: Event) -> Result:
    if r.phase in ENDED:
        return r, []
    match event:
        case Cancel():
            # a new instance that has not replaced its old one is not kept
            keep = r.phase is Phase.RETIRING
            return replace(r, phase=Phase.CANCELLED), [
                Discard(p.new) for p in r.batch if p.new is not None and not (keep and p.failed is None)]
        case Started(index=index, uid=uid):
            return _update(r, lambda p: p.index == index and p.new is None, new=uid), []
        case NewReady(uid=uid):
            return _settle(_update(r, lambda p: p.new == uid and p.failed is None, ready=True))
        case NewFailed(uid=uid, reason=reason):
            return _settle(_update(r, lambda p: p.new == uid and not p.ready, failed=reason))
        case Gone(uid=uid, now=now):
            return _gone(r, uid, now)
        case Tick(now=now) if r.phase is Phase.STARTING and r.deadline is not None and now >= r.deadline:
            reason = f"was not ready within {r.wait:g}s"
            late = {p.index for p in r.batch if not p.ready and p.failed is None}
            return _settle(_update(r, lambda p: p.index in late, failed=reason), now)
    return r, []


def _update(r: Rollout, which: Callable[[Pair], bool], **changes: Any) -> Rollout:
    return replace(r, batch=tuple(replace(p, **changes) if which(p) else p for p in r.batch))


def _settle(r: Rollout, now: float | None = None) -> Result:
    """Once every new instance of the batch is ready or failed: retire or discard."""
    if r.phase is not Phase.STARTING or any(not p.ready and p.failed is None for p in r.batch):
        return r, []
    actions: list[Action] = []
    for p in r.batch:
        if p.failed is None:
            actions.append(Retire(p.old))
        elif p.new is not None:
            actions.append(Discard(p.new))
    failure = next((p for p in r.batch if p.failed is not None), None)
    r = replace(r, phase=Phase.RETIRING, failure=failure, deadline=None)
    if not actions:  # nothing to wait for (a failed start that never got a slot)
        return _batch_over(r, now or 0.0)
    return r, actions


def _gone(r: Rollout, uid: int, now: float) -> Result:
    if r.phase is not Phase.RETIRING:
        return r, []
    r = _update(r, lambda p: (p.old == uid and p.failed is None) or (p.new == uid and p.failed is not None),
                old_gone=True)
    if all(p.old_gone or (p.failed is not None and p.new is None) for p in r.batch):
        return _batch_over(r, now)
    return r, []


def _batch_over(r: Rollout, now: float) -> Result:
    done = r.done + tuple(p for p in r.batch if p.failed is None)
    r = replace(r, done=done, batch=())
    if r.failure is not None:
        return replace(r, phase=Phase.FAILED), []
    return _next_batch(r, now)
