"""Typed domain events: what happened to an app or an instance, frozen once published.

Frozen structs (:mod:`corral.structs`: checked like dataclasses, without a generated method per
class; events are compared by identity; the daemon keeps its memory small).  The supervisor publishes them on the bus (``corral.daemon.bus``); the store, ``corral
events --follow``, the TUI and the web stream are subscribers.  Every event can be
shown as the row ``corral events`` prints (``ts, app, instance, kind, message, data``);
``stored`` says whether the store keeps it in the history.  Kept: what ``corral
events`` has always shown (spawn, exit, crash, ready, stop, kill, crash_loop ...) and
app changes, reloads and scales.  Not kept (live subscribers only, they would flood
the history): state changes, exits that were asked for, probe results.

``ts`` is left at 0 by publishers; the bus stamps it with the clock's wall time.

Imports only the standard library (the pure lifecycle may import it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field
from typing import Any, ClassVar

from corral.structs import KwStruct


class Event(KwStruct):
    """Something that happened to ``app`` (to one of its instances when ``instance`` is set)."""

    app: str
    instance: int | None = None
    ts: float = 0.0

    KIND: ClassVar[str] = "event"
    STORED: ClassVar[bool] = True

    @property
    def kind(self) -> str:
        return self.KIND

    @property
    def message(self) -> str:
        return self.KIND

    @property
    def data(self) -> Mapping[str, Any]:
        return {}

    @property
    def stored(self) -> bool:
        """Kept in the history ``corral events`` shows (else: live subscribers only)."""
        return self.STORED

    def row(self) -> dict[str, Any]:
        """The event as ``corral events --json`` shows it."""
        return {"ts": self.ts, "app": self.app, "instance": self.instance, "kind": self.kind,
                "message": self.message, "data": dict(self.data)}


# -- instances ---------------------------------------------------------------------------
class Note(Event):
    """A line of history with no type of its own: start, stop, restart, stopped, kill,
    crash_loop, errored, not_ready, watchdog, spawn_failed, stopping, recovered, dependency, skipped."""

    kind: str
    message: str
    data: Mapping[str, Any] = field(default_factory=dict)


class StateChanged(Event):
    """An instance moved from one status to another; ``expected`` is False when the instance
    did it on its own (it crashed, failed to start, went silent) rather than as asked."""

    old: str
    new: str
    expected: bool = True
    cause: str = ""  # the lifecycle event that moved it: Start, Exited, TimerFired ...

    KIND: ClassVar[str] = "state"
    STORED: ClassVar[bool] = False

    @property
    def message(self) -> str:
        return f"{self.old} -> {self.new}" + ("" if self.expected else " (unexpected)")

    @property
    def data(self) -> Mapping[str, Any]:
        return {"from": self.old, "to": self.new, "expected": self.expected, "cause": self.cause}


class InstanceSpawned(Event):
    pid: int

    KIND: ClassVar[str] = "spawn"

    @property
    def message(self) -> str:
        return f"pid {self.pid}"

    @property
    def data(self) -> Mapping[str, Any]:
        return {"pid": self.pid}


class InstanceExited(Event):
    """The main process of an instance ended.  Kept in the history when nobody asked for it."""

    code: int | None
    signal: str | None
    expected: bool
    message: str
    pid: int | None = None

    KIND: ClassVar[str] = "exit"

    @property
    def data(self) -> Mapping[str, Any]:
        return {"code": self.code, "signal": self.signal}

    @property
    def stored(self) -> bool:
        return not self.expected


class InstanceCrashed(Event):
    """An unrequested failure, with its crash report (``corral.logs.crashreport``)."""

    report: Mapping[str, Any]
    message: str

    KIND: ClassVar[str] = "crash"

    @property
    def data(self) -> Mapping[str, Any]:
        return self.report


class InstanceReady(Event):
    message: str

    KIND: ClassVar[str] = "ready"


class LogDropped(Event):
    """Lines of one stream of an instance that its log file never got (a full disk, a quota,
    an I/O error), reported when a write to it succeeds again (or the instance is gone): how
    many, since when, and why.  Every one was counted meanwhile (``corral ls``, ``describe``)."""

    stream: str  # "out" or "err"
    path: str
    lines: int
    size: int  # bytes of those lines (as they would have been written, without timestamps)
    since: float  # wall time of the first line dropped
    error: str

    KIND: ClassVar[str] = "log_dropped"

    @property
    def message(self) -> str:
        import time

        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.since))
        return (f"{self.lines} line(s) ({self.size} bytes) of std{self.stream} not written to {self.path} "
                f"since {when}: {self.error}")

    @property
    def data(self) -> Mapping[str, Any]:
        return {"stream": self.stream, "path": self.path, "lines": self.lines, "bytes": self.size,
                "since": self.since, "error": self.error}


class Threshold(Event):
    """A metric crossed its threshold for ``samples`` samples (``cleared`` False), or came back
    past its lower line (``cleared`` True).  ``app`` is "" for host-wide metrics (memory_available,
    cpu, disk: ``mount`` names the filesystem); per instance: cpu, process_memory.  ``value`` and
    ``limit`` are percent for percentages, bytes for memory."""

    metric: str
    value: float
    limit: float
    cleared: bool = False
    mount: str = ""
    samples: int = 1

    KIND: ClassVar[str] = "threshold"

    @property
    def message(self) -> str:
        what = self.metric + (f" {self.mount}" if self.mount else "")
        shown = _figure(self.metric, self.value)
        if self.cleared:
            return f"{what} back to {shown} (cleared; line {_figure(self.metric, self.limit)})"
        side = "at or below" if self.metric == "memory_available" else "at or above"
        return f"{what} {shown}, {side} {_figure(self.metric, self.limit)} for {self.samples} sample(s)"

    @property
    def data(self) -> Mapping[str, Any]:
        return {"metric": self.metric, "value": self.value, "limit": self.limit, "cleared": self.cleared,
                "mount": self.mount, "samples": self.samples}


def _figure(metric: str, value: float) -> str:
    if metric in ("process_memory", "max_memory_restart"):
        return f"{value / 1024 ** 2:.1f} MiB"
    return f"{value:.1f}%"


# -- profiling (corral.profile) --------------------------------------------------------------
class ReloadProgress(Event):
    """A step of a reload: ``started``, ``replaced`` (one instance), ``done`` or ``failed``."""

    step: str
    message: str

    KIND: ClassVar[str] = "reload"

    @property
    def data(self) -> Mapping[str, Any]:
        return {"step": self.step}


class ScaleProgress(Event):
    """A scale from ``before`` to ``after`` instances: ``started`` or ``done``."""

    step: str
    before: int
    after: int

    KIND: ClassVar[str] = "scale"

    @property
    def message(self) -> str:
        verb = "scaling" if self.step == "started" else "scaled"
        return f"{verb} from {self.before} to {self.after} instance(s)"

    @property
    def data(self) -> Mapping[str, Any]:
        return {"step": self.step, "before": self.before, "after": self.after}


class AppAdded(Event):
    app_id: int
    restored: bool = False  # brought back by a new daemon (not a user's start)

    KIND: ClassVar[str] = "app_added"

    @property
    def message(self) -> str:
        return f"added as id {self.app_id}" + (" (restored by a new daemon)" if self.restored else "")

    @property
    def data(self) -> Mapping[str, Any]:
        return {"id": self.app_id, "restored": self.restored}


class AppChanged(Event):
    """The app's configuration changed; ``keys`` names what changed (never the values)."""

    keys: tuple[str, ...]

    KIND: ClassVar[str] = "app_changed"

    @property
    def message(self) -> str:
        return "configuration changed: " + ", ".join(self.keys)

    @property
    def data(self) -> Mapping[str, Any]:
        return {"keys": list(self.keys)}


class AppRemoved(Event):
    KIND: ClassVar[str] = "app_removed"

    @property
    def message(self) -> str:
        return "deleted"


# -- jobs ----------------------------------------------------------------------------------
class JobStarted(Event):
    """A run of job ``app`` started (``trigger``: cron, interval, at, start, catch_up, retry,
    queued, manual)."""

    trigger: str
    attempt: int = 0
    pid: int | None = None

    KIND: ClassVar[str] = "job_start"

    @property
    def message(self) -> str:
        retry = f" (retry {self.attempt})" if self.attempt else ""
        return f"job {self.app} started by {self.trigger}{retry}" + (f", pid {self.pid}" if self.pid else "")

    @property
    def data(self) -> Mapping[str, Any]:
        return {"trigger": self.trigger, "attempt": self.attempt, "pid": self.pid}


class JobFinished(Event):
    """A run of job ``app`` ended: ``outcome`` ok, failed, timeout, replaced or error (it could not
    start).  ``final``: no retry follows (a failed final run raises a ``job_failed`` alert)."""

    trigger: str
    outcome: str
    attempt: int = 0
    code: int | None = None
    signal: str | None = None
    duration: float = 0.0
    tail: list[str] = field(default_factory=list)
    retry_in: float | None = None
    detail: str = ""

    KIND: ClassVar[str] = "job_done"

    @property
    def kind(self) -> str:
        return "job_done" if self.outcome == "ok" else "job_failed"

    @property
    def final(self) -> bool:
        return self.retry_in is None

    @property
    def message(self) -> str:
        how = {"ok": "succeeded", "timeout": "timed out", "replaced": "was replaced",
               "error": "could not start"}.get(self.outcome, "failed")
        end = f"exit {self.code}" if self.code is not None else f"signal {self.signal}" if self.signal else ""
        text = f"job {self.app} {how}" + (f" ({end})" if end and self.outcome != "error" else "")
        text += f" after {self.duration:.1f}s" if self.outcome != "error" else f": {self.detail}"
        if self.retry_in is not None:
            text += f"; retry {self.attempt + 1} in {self.retry_in:g}s"
        elif self.outcome != "ok" and self.tail:
            text += f": {self.tail[-1][:200]}"
        return text

    @property
    def data(self) -> Mapping[str, Any]:
        return {"trigger": self.trigger, "outcome": self.outcome, "attempt": self.attempt, "code": self.code,
                "signal": self.signal, "duration": self.duration, "tail": list(self.tail),
                "retry_in": self.retry_in, "final": self.final, "detail": self.detail}


class JobSkipped(Event):
    """A trigger of job ``app`` that did not run: ``reason`` (still running, paused, queue full)."""

    trigger: str
    reason: str

    KIND: ClassVar[str] = "job_skipped"
    STORED: ClassVar[bool] = False  # the job's history keeps them (one per trigger: they would flood events)

    @property
    def message(self) -> str:
        return f"job {self.app}: {self.trigger} trigger skipped: {self.reason}"

    @property
    def data(self) -> Mapping[str, Any]:
        return {"trigger": self.trigger, "reason": self.reason}


def from_record(app: str, instance: int | None, kind: str, message: str, data: Mapping[str, Any]) -> Event:
    """The event for a lifecycle ``Record(kind, message, data)`` effect of one instance."""
    if kind == "spawn" and isinstance(data.get("pid"), int):
        return InstanceSpawned(app=app, instance=instance, pid=data["pid"])
    if kind == "exit":
        return InstanceExited(app=app, instance=instance, code=data.get("code"), signal=data.get("signal"),
                              expected=False, message=message)
    if kind == "ready":
        return InstanceReady(app=app, instance=instance, message=message)
    return Note(app=app, instance=instance, kind=kind, message=message, data=dict(data))
