"""The events of the features (probes, liveness, the sweep, alerts, evidence and profiles,
deploys): typed like :mod:`corral.events`, kept apart so that a daemon whose features never run
never loads them (the daemon's memory).  Standard library and :mod:`corral.events` only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field
from typing import Any, ClassVar

from corral.events import Event


class ProbeResult(Event):
    """One probe attempt (``probe``: http, tcp or cmd; ``purpose``: ready or live)."""

    probe: str
    ok: bool
    detail: str = ""
    purpose: str = "ready"

    KIND: ClassVar[str] = "probe"
    STORED: ClassVar[bool] = False

    @property
    def message(self) -> str:
        outcome = "passed" if self.ok else "failed"
        return f"{self.purpose} {self.probe} probe {outcome}" + (f": {self.detail}" if self.detail else "")

    @property
    def data(self) -> Mapping[str, Any]:
        return {"probe": self.probe, "ok": self.ok, "detail": self.detail, "purpose": self.purpose}


class LivenessFailed(Event):
    """A liveness probe failed and counted (``failures`` of ``threshold`` in a row); ``replacing``
    when this one reached the threshold and corral replaces the instance."""

    probe: str
    detail: str
    failures: int
    threshold: int
    pid: int = 0
    replacing: bool = False

    KIND: ClassVar[str] = "liveness_failed"

    @property
    def message(self) -> str:
        text = f"liveness {self.probe} probe failed ({self.failures}/{self.threshold})" + (
            f": {self.detail}" if self.detail else "")
        return text + (f"; replacing pid {self.pid} gracefully" if self.replacing else "")

    @property
    def data(self) -> Mapping[str, Any]:
        return {"probe": self.probe, "detail": self.detail, "failures": self.failures, "threshold": self.threshold,
                "pid": self.pid, "replacing": self.replacing}


class SweepReport(Event):
    """The health sweep (every ``sweep_interval``): apps not online, apps up for less than
    15 minutes after a restart (flapping), and the apps it revived.  ``app`` is ""."""

    problems: list[dict[str, Any]] = field(default_factory=list)
    revived: list[str] = field(default_factory=list)

    KIND: ClassVar[str] = "sweep"

    @property
    def message(self) -> str:
        if not self.problems:
            return "sweep: every app is online and steady"
        parts = [f"{p['app']} {p['problem']}" for p in self.problems]
        text = f"sweep: {len(self.problems)} problem(s): " + "; ".join(parts)
        return text + (f"; revived {', '.join(self.revived)}" if self.revived else "")

    @property
    def data(self) -> Mapping[str, Any]:
        return {"problems": list(self.problems), "revived": list(self.revived)}


class Evidence(Event):
    """What an instance was doing just before corral replaced it on its own (H4): every thread's
    stack (``how`` = ``py-spy dump``) or the last lines of its logs (``how`` = ``logs``; ``why``
    says why there is no stack when one was wanted)."""

    pid: int
    reason: str
    how: str
    text: str
    why: str = ""
    files: tuple[str, ...] = ()  # a heap snapshot taken with it (max_memory_restart)

    KIND: ClassVar[str] = "evidence"

    @property
    def message(self) -> str:
        what = "stacks (py-spy dump)" if self.how == "py-spy dump" else "last log lines"
        text = f"before replacing pid {self.pid}: {what}, {len(self.text.splitlines())} lines"
        frames = [ln.strip() for ln in self.text.splitlines() if ln.startswith("    ")]
        text += f"; innermost: {frames[0][:200]}" if frames and self.how == "py-spy dump" else ""
        text += f"; no stack: {self.why}" if self.why else ""
        return text + (f"; heap snapshot {', '.join(self.files)}" if self.files else "")

    @property
    def data(self) -> Mapping[str, Any]:
        return {"pid": self.pid, "reason": self.reason, "how": self.how, "text": self.text, "why": self.why,
                "files": list(self.files)}


class Profiled(Event):
    """A profile or snapshot was written (``trigger``: ``manual`` or the threshold that took it)."""

    what: str  # cpu | heap
    pid: int
    files: tuple[str, ...] = ()
    trigger: str = "manual"
    error: str = ""

    KIND: ClassVar[str] = "profile"

    @property
    def message(self) -> str:
        if self.error:
            return f"{self.what} profile of pid {self.pid} ({self.trigger}) failed: {self.error}"
        return f"{self.what} profile of pid {self.pid} ({self.trigger}): {', '.join(self.files)}"

    @property
    def data(self) -> Mapping[str, Any]:
        return {"what": self.what, "pid": self.pid, "files": list(self.files), "trigger": self.trigger,
                "error": self.error}


# -- alerts (corral.monitor) -----------------------------------------------------------------


class Alert(Event):
    """An alert raised for a person (``corral.monitor.alerts``): ``app`` is "" for the host.
    ``alert`` is its id (``a12``), ``sinks`` the sinks it goes to now (the others do not take
    it, or had an identical one within the hour)."""

    alert: str
    alert_kind: str
    severity: str
    title: str
    details: Mapping[str, Any] = field(default_factory=dict)
    sinks: tuple[str, ...] = ()

    KIND: ClassVar[str] = "alert"

    @property
    def message(self) -> str:
        return f"{self.severity}: {self.title}"

    @property
    def data(self) -> Mapping[str, Any]:
        return {"id": self.alert, "kind": self.alert_kind, "severity": self.severity, "title": self.title,
                "sinks": list(self.sinks), "details": dict(self.details)}


class AlertDelivery(Event):
    """The outcome of an alert at one sink: ``delivered``, or ``undelivered`` with the reason
    once its retries are spent."""

    alert: str
    sink: str
    outcome: str
    attempts: int
    reason: str = ""
    suppressed: int = 0

    KIND: ClassVar[str] = "alert_delivery"

    @property
    def message(self) -> str:
        text = f"alert {self.alert} {self.outcome} to {self.sink} after {self.attempts} attempt(s)"
        return text + (f": {self.reason}" if self.reason and self.outcome != "delivered" else "")

    @property
    def data(self) -> Mapping[str, Any]:
        return {"alert": self.alert, "sink": self.sink, "outcome": self.outcome, "attempts": self.attempts,
                "reason": self.reason, "suppressed": self.suppressed}


# -- apps ----------------------------------------------------------------------------------


class DeployProgress(Event):
    """A step of ``corral deploy`` on an app (``corral deploy`` sends them): ``started``, ``switched``,
    ``canary``, ``done``, ``rollback`` (a by-hand ``corral rollback``)."""

    step: str
    message: str
    release: str = ""

    KIND: ClassVar[str] = "deploy"

    @property
    def data(self) -> Mapping[str, Any]:
        return {"step": self.step, "release": self.release}


class DeployFailed(Event):
    """A deploy that failed after its switch: ``current`` went back (``rolled_back``) or could not
    (``failed``); it alerts."""

    step: str
    message: str
    release: str = ""

    KIND: ClassVar[str] = "deploy_failed"

    @property
    def data(self) -> Mapping[str, Any]:
        return {"step": self.step, "release": self.release}
