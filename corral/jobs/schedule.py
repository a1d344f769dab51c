"""The job schedule, pure: when each job is due, what a due trigger does (run, skip, queue,
replace), retries with exponential backoff, jitter, and the one catch-up run after downtime.

No IO and no clock: every method takes ``now`` (wall time, unix seconds) and returns what to do;
the service (``corral.jobs.service``) carries it out and keeps one timer for the earliest due
time.  Randomness (jitter) comes in as numbers from 0 to 1.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Any

from corral.jobs import cron

MAX_QUEUED = 10  # overlap = "queue": triggers beyond this many waiting are skipped
BACKOFF_CAP = 3600.0


@dataclass(frozen=True, kw_only=True)
class Trigger:
    """What a job's timing says (from its checked settings)."""

    cron: str | None = None  # normalized (corral.jobs.cron.normalize)
    timezone: str | None = None
    interval: float | None = None
    at: float | None = None  # wall time
    on_start: bool = False
    overlap: str = "skip"  # skip | queue | replace
    retries: int = 0
    backoff: float = 1.0  # seconds before the first retry; doubled for each next one
    jitter: float = 0.0
    catch_up: bool = False
    enabled: bool = True

    @classmethod
    def of(cls, job: dict[str, Any]) -> Trigger:
        """The trigger of a checked job dict (``corral.config.jobs``)."""
        keys = cls.__dataclass_fields__
        values = {key: job[key] for key in keys if job.get(key) is not None}
        if job.get("retry_delay") is not None:
            values["backoff"] = job["retry_delay"]
        return cls(**values)


@dataclass(frozen=True)
class Run:
    trigger: str  # cron | interval | at | start | catch_up | retry | queued | manual
    attempt: int = 0  # 0: the first try; n: the n-th retry


@dataclass(frozen=True)
class Skipped:
    trigger: str
    reason: str


@dataclass(frozen=True)
class Stop:
    """``overlap = "replace"``: end the running one (its run is recorded as replaced)."""


Action = Run | Skipped | Stop


@dataclass
class JobState:
    slot: float | None = None  # the scheduled time of the next trigger
    due: float | None = None  # slot + its jitter: when the trigger fires
    running: bool = False
    retry_at: float | None = None
    attempt: int = 0
    queued: list[str] = field(default_factory=list)
    replacing: bool = False
    paused: bool = False
    last_slot: float | None = None  # the last scheduled time that came (kept for catch_up)


class Schedule:
    """Every job's timing state; decisions only."""

    def __init__(self) -> None:
        self.triggers: dict[str, Trigger] = {}
        self.states: dict[str, JobState] = {}
        self._zones: dict[str | None, Any] = {}
        self._heap: list[tuple[float, str]] = []  # (due time, job); stale entries dropped when seen

    def _push(self, name: str) -> None:
        state = self.states[name]
        for when in (state.due, state.retry_at):
            if when is not None:
                heapq.heappush(self._heap, (when, name))

    # -- set-up ------------------------------------------------------------------------
    def load(self, name: str, trigger: Trigger, now: float, last_slot: float | None, rand: float,
             starting: bool) -> list[Action]:
        """A job (re)loaded: its next slot; ``Run`` now for ``on_start`` (``starting``: the daemon
        or the job is new) and for a catch-up (a slot passed since ``last_slot`` while down)."""
        old = self.states.get(name)
        state = old if old is not None else JobState(last_slot=last_slot)
        self.triggers[name] = trigger
        self.states[name] = state
        state.slot = self._next_slot(trigger, state.last_slot if trigger.at is not None else None, now)
        state.due = self._with_jitter(trigger, state.slot, rand)
        actions: list[Action] = []
        if not trigger.enabled:
            state.slot = state.due = None
            return actions
        self._push(name)
        if trigger.on_start and starting:
            actions.append(self._start(name, "start", now))
        elif trigger.catch_up and old is None and self._missed(trigger, state.last_slot, now):
            state.last_slot = now
            actions.append(self._start(name, "catch_up", now))
        return actions

    def remove(self, name: str) -> None:
        self.triggers.pop(name, None)
        self.states.pop(name, None)

    def _missed(self, trigger: Trigger, last_slot: float | None, now: float) -> bool:
        if trigger.at is not None:  # its one time came while the daemon was down, and it never ran
            return (last_slot is None or last_slot < trigger.at) and trigger.at <= now
        if last_slot is None:
            return False
        if trigger.interval is not None:
            return last_slot + trigger.interval <= now
        if trigger.cron is not None:
            missed = cron.next_after(trigger.cron, last_slot, self._zone(trigger.timezone))
            return missed is not None and missed <= now
        return False

    def _zone(self, name: str | None) -> Any:
        if name not in self._zones:
            self._zones[name] = cron.zone(name)
        return self._zones[name]

    def _next_slot(self, trigger: Trigger, previous: float | None, now: float) -> float | None:
        """The first scheduled time after ``now`` (``previous``: the slot that just came)."""
        if trigger.cron is not None:
            return cron.next_after(trigger.cron, now, self._zone(trigger.timezone))
        if trigger.interval is not None:
            if previous is None or previous + trigger.interval <= now:  # first, or behind: from now
                return now + trigger.interval
            return previous + trigger.interval
        if trigger.at is not None:
            return trigger.at if trigger.at > now and (previous is None or previous < trigger.at) else None
        return None

    @staticmethod
    def _with_jitter(trigger: Trigger, slot: float | None, rand: float) -> float | None:
        return None if slot is None else slot + trigger.jitter * rand

    # -- time passes -------------------------------------------------------------------
    def next_due(self) -> tuple[float, str] | None:
        """The earliest (time, job) something is due: a trigger or a retry (one heap: cheap with
        thousands of jobs)."""
        heap = self._heap
        while heap:
            when, name = heap[0]
            state = self.states.get(name)
            if state is not None and when in (state.due, state.retry_at):
                return heap[0]
            heapq.heappop(heap)
        return None

    def fire(self, name: str, now: float, rand: float) -> list[Action]:
        """Whatever of ``name`` is due at ``now``: its retry, its trigger (then its next slot)."""
        state, trigger = self.states[name], self.triggers[name]
        actions: list[Action] = []
        while self._heap and self._heap[0][1] == name and self._heap[0][0] <= now:
            heapq.heappop(self._heap)
        if state.retry_at is not None and state.retry_at <= now:
            state.retry_at = None
            actions.append(self._start(name, "retry", now, state.attempt))
        if state.due is not None and state.due <= now and state.slot is not None:
            slot = state.slot
            state.last_slot = slot
            kind = "cron" if trigger.cron else "interval" if trigger.interval else "at"
            state.slot = self._next_slot(trigger, slot, max(now, slot))
            state.due = self._with_jitter(trigger, state.slot, rand)
            if state.due is not None:
                heapq.heappush(self._heap, (state.due, name))
            if state.paused:
                actions.append(Skipped(kind, "paused"))
            else:
                actions.extend(self.trigger(name, kind, now))
        return actions

    def trigger(self, name: str, kind: str, now: float) -> list[Action]:
        """A trigger (scheduled or ``manual``): run it, or what ``overlap`` says when busy."""
        state, trigger = self.states[name], self.triggers[name]
        if not (state.running or state.retry_at is not None):
            return [self._start(name, kind, now)]
        if trigger.overlap == "queue":
            if len(state.queued) >= MAX_QUEUED:
                return [Skipped(kind, f"{MAX_QUEUED} runs already queued")]
            state.queued.append(kind)
            return []
        if trigger.overlap == "replace":
            state.attempt = 0
            if state.retry_at is not None and not state.running:
                state.retry_at = None
                return [self._start(name, kind, now)]
            state.queued = [kind]
            if state.replacing:
                return []
            state.replacing = True
            return [Stop()]
        return [Skipped(kind, "still running (overlap = skip)")]

    def _start(self, name: str, kind: str, now: float, attempt: int = 0) -> Run:
        state = self.states[name]
        state.running = True
        state.attempt = attempt
        return Run(kind, attempt)

    def exited(self, name: str, ok: bool, now: float) -> list[Action]:
        """A run ended (``ok``: exit 0): a retry after its backoff, or the next queued run."""
        state = self.states.get(name)
        if state is None:
            return []
        trigger = self.triggers[name]
        state.running = False
        replaced, state.replacing = state.replacing, False
        if not ok and not replaced and state.attempt < trigger.retries:
            state.attempt += 1
            state.retry_at = now + min(BACKOFF_CAP, trigger.backoff * 2 ** (state.attempt - 1))
            heapq.heappush(self._heap, (state.retry_at, name))
            return []
        state.attempt = 0
        if state.queued:
            kind = state.queued.pop(0)
            return [self._start(name, kind if replaced else "queued", now)]
        return []

    def pause(self, name: str, paused: bool) -> None:
        self.states[name].paused = paused
