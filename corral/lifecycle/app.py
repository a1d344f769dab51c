"""The model of one app, pure: what should run, how many instances, one mutation at a time.

No IO and no clock reads: callers pass ``now`` (monotonic seconds).  The daemon
keeps one :class:`AppState` per app and asks these functions what to do; it
carries out the actions they return.

* **Desired state**: ``online`` or ``stopped``; ``deleting`` once a delete is asked for.
* **Resize**: one slot per index ``0 .. instances-1``.  Only indices count, so the
  second slot a rolling reload puts at an index is not an extra instance.
* **One mutation at a time**: a reload, scale, restart or changed ``start`` of an app
  holds the app until it ends; a second one is refused with one clear line
  (:func:`busy_message`) instead of running beside it.  A stop or delete is never
  refused: it ends the mutation in progress (the rollout sees it and stops).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from corral.lifecycle.instance import RUNNING, Status


class Desired(StrEnum):
    ONLINE = "online"
    STOPPED = "stopped"


@dataclass(frozen=True)
class Mutation:
    """A change of the app in progress: what it is and when it began (monotonic seconds)."""

    kind: str  # "reload" | "scale" | "restart" | "start"
    started_at: float


@dataclass(frozen=True)
class AppState:
    desired: Desired = Desired.STOPPED
    instances: int = 1
    deleting: bool = False
    mutation: Mutation | None = None


@dataclass(frozen=True)
class SlotInfo:
    """What the model needs to know of one slot."""

    uid: int
    index: int
    status: Status


# -- actions ------------------------------------------------------------------------------
@dataclass(frozen=True)
class AddSlot:
    """A new slot at INDEX; started when the app should be online."""

    index: int
    start: bool


@dataclass(frozen=True)
class RemoveSlot:
    """Stop the slot and forget it (an index past ``instances``)."""

    uid: int


Action = AddSlot | RemoveSlot


@dataclass(frozen=True)
class Busy:
    """A mutation was refused: another one holds the app."""

    kind: str
    running_for: float


# -- decisions ----------------------------------------------------------------------------
def resize(state: AppState, slots: list[SlotInfo]) -> list[Action]:
    """Match the slots to ``instances``: a slot for every missing index, none past the end."""
    if state.deleting:
        return []
    used = {s.index for s in slots}
    actions: list[Action] = [AddSlot(i, state.desired is Desired.ONLINE)
                             for i in range(state.instances) if i not in used]
    actions += [RemoveSlot(s.uid) for s in slots if s.index >= state.instances]
    return actions


def begin(state: AppState, kind: str, now: float) -> tuple[AppState, Busy | None]:
    """Take the app for a mutation, or say which one holds it."""
    if state.mutation is not None:
        return state, Busy(state.mutation.kind, max(0.0, now - state.mutation.started_at))
    return replace(state, mutation=Mutation(kind, now)), None


def end(state: AppState) -> AppState:
    """The mutation is over (done, failed or interrupted)."""
    return replace(state, mutation=None)


def busy_message(name: str, busy: Busy) -> str:
    return (f"{name}: a {busy.kind} is in progress (started {_ago(busy.running_for)} ago); "
            "try again when it ends")


def _ago(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min"


def set_desired(state: AppState, desired: Desired) -> AppState:
    return replace(state, desired=desired)


def scale_target(current: int, text: str, ceiling: int) -> int | str:
    """``scale NAME N|+N|-N``: the new instance count, or why it is refused."""
    text = text.strip()
    body = text[1:] if text[:1] in "+-" else text
    if not (body.isascii() and body.isdigit()) or len(body) > 9:  # "²" is a digit, not a number
        return f'"{text}" is not a number of instances (use 4, +2 or -1)'
    value = int(body)
    wanted = current + value if text[:1] == "+" else current - value if text[:1] == "-" else value
    if wanted < 1:
        return f"would have {wanted} instances (at least 1; use stop to stop it)"
    if wanted > ceiling:
        return f"would have {wanted} instances (at most {ceiling})"
    return wanted


def live_per_index(slots: list[SlotInfo]) -> dict[int, int]:
    """How many slots at each index have a live or starting process."""
    counts: dict[int, int] = {}
    for slot in slots:
        if slot.status in RUNNING or slot.status is Status.STOPPING:
            counts[slot.index] = counts.get(slot.index, 0) + 1
    return counts


def duplicated_indices(slots: list[SlotInfo]) -> list[int]:
    """Indices with more than one live instance: allowed only while a rollout runs."""
    return sorted(i for i, n in live_per_index(slots).items() if n > 1)
