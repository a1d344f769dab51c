"""Alerts that reach a person, decided: from bus events to alerts, and from alerts to deliveries.

PURE: no IO, no asyncio, no clock reads (time comes in as ``now``, monotonic seconds); the
daemon side (:mod:`corral.monitor.alertservice`) feeds it events and delivery results and carries
out what it returns.  Tested transition by transition on a ``ManualClock``.

**What alerts** (:func:`alert_for`), with its severity:

=====================  =========  ===========================================================
kind                   severity   from
=====================  =========  ===========================================================
``crash_loop``         critical   the ``crash_loop`` note (N consecutive fast failures)
``errored``            critical   an instance moving to ``errored`` (corral gave up on it)
``code_bug``           warning    a ``crash`` whose report says ``code_bug``; a crash that is a
                                  user error or an external failure is counted, not paged
``threshold``          warning    a ``threshold`` event (metric, value, limit; per mount)
``threshold_cleared``  warning    the same, ``cleared``: sent to every sink that took the alert
``log_dropped``        warning    lines a log file never got
``sweep``              warning    a sweep report that lists problems (apps not online, flapping)
``liveness``           warning    a ``liveness_failed`` event that replaces the instance
``deploy``             critical   a ``deploy_failed`` event: a deploy rolled back (or could not)
``job_failed``         warning    a job run that failed with no retry left (exit, signal, timeout,
                                  could not start; ``corral:disk`` still over after its cleanup)
``snapshot``           warning    an automatic heap snapshot and CPU profile (``profile`` event
                                  of a threshold, not a manual one): names the files
``test``               info       ``corral alerts test``: every sink, whatever its min_severity
=====================  =========  ===========================================================

**Per sink**: an alert below the sink's ``min_severity`` is not sent to it.  Identical alerts
(same kind, app, mount, and metric for thresholds) go to a sink at most once per
:data:`REPEAT` (an hour, the mail provider's rule); the ones in between are counted, and the
next one sent says how many were suppressed.  A delivery that fails is retried after
:data:`BACKOFF` (5 s, 30 s, 2 min, 10 min), then recorded as undelivered with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Alert", "AlertEngine", "Delivery", "alert_for", "SEVERITY", "REPEAT", "BACKOFF"]

SEVERITIES = ("info", "warning", "critical")
SEVERITY = {"crash_loop": "critical", "errored": "critical", "code_bug": "warning", "threshold": "warning",
            "threshold_cleared": "warning", "log_dropped": "warning", "sweep": "warning", "liveness": "warning",
            "deploy": "critical", "job_failed": "warning", "snapshot": "warning", "test": "info"}
REPEAT = 3600.0
BACKOFF = (5.0, 30.0, 120.0, 600.0)
MAX_QUEUED = 100  # deliveries waiting per sink; beyond, the oldest is given up (counted)
KINDS = frozenset(("crash", "crash_loop", "errored", "state", "threshold", "log_dropped", "sweep", "liveness_failed",
                   "deploy_failed", "job_failed", "profile"))


@dataclass
class Alert:
    kind: str
    app: str  # "" for the host
    title: str  # one line a person reads
    severity: str
    instance: int | None = None
    mount: str = ""
    metric: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    ts: float = 0.0  # wall time of the event
    number: int = 0  # given by the engine
    prefix: str = "a"  # the engine's: ids stay unique across daemons (``6567ab12.3``)

    @property
    def key(self) -> tuple[str, str, str, str]:
        """What makes two alerts identical for the hourly collapse."""
        return (self.kind, self.app, self.mount, self.metric)

    @property
    def id(self) -> str:
        return f"{self.prefix}{self.number}"

    @property
    def status(self) -> str:
        return "resolved" if self.kind == "threshold_cleared" else "firing"

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "severity": self.severity, "status": self.status,
                "app": self.app, "instance": self.instance, "mount": self.mount, "metric": self.metric,
                "title": self.title, "ts": self.ts, "details": self.details}


@dataclass
class Delivery:
    """One alert to one sink: attempted, retried, then delivered or undelivered."""

    alert: Alert
    sink: str  # the sink's name
    suppressed: int = 0  # identical alerts not sent to this sink since the last one it got
    attempts: int = 0
    outcome: str = "pending"  # pending | delivered | undelivered
    reason: str = ""
    retry_at: float | None = None
    queued: bool = True  # counts against the sink's queue (a test delivery does not)

    def to_dict(self) -> dict[str, Any]:
        return {"alert": self.alert.id, "sink": self.sink, "suppressed": self.suppressed, "attempts": self.attempts,
                "outcome": self.outcome, "reason": self.reason}


def _rank(severity: str) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else 1


def alert_for(kind: str, app: str, instance: int | None, message: str, data: dict[str, Any],
              ts: float = 0.0) -> Alert | str | None:
    """The alert an event (its ``kind``, ``app``, ``instance``, ``message``, ``data``) raises;
    a string (the crash's classification) for a crash that is counted, not paged; else None."""
    where = app if instance is None else f"{app}[{instance}]"
    if kind == "crash":
        if data.get("is_code_bug"):
            return Alert("code_bug", app, f"{where} crashed on a code bug: {message}", SEVERITY["code_bug"],
                         instance, details=_crash_details(data), ts=ts)
        return str(data.get("classification") or "unclassified")
    if kind == "crash_loop":
        return Alert("crash_loop", app, f"{where} is in a {message}", SEVERITY["crash_loop"], instance,
                     details=dict(data), ts=ts)
    if kind == "errored":
        text = f"{where} is errored: corral will not restart it" + (f" ({message})" if message else "")
        return Alert("errored", app, text, SEVERITY["errored"], instance, details=dict(data), ts=ts)
    if kind == "threshold":
        return _threshold(app, instance, data, ts)
    if kind == "log_dropped":
        return Alert("log_dropped", app, f"{where}: {message}", SEVERITY["log_dropped"], instance, details=dict(data),
                     ts=ts)
    if kind == "sweep":
        if not data.get("problems"):
            return None
        return Alert("sweep", app, message, SEVERITY["sweep"], instance, details=dict(data), ts=ts)
    if kind == "liveness_failed":
        if not data.get("replacing"):
            return None
        return Alert("liveness", app, f"{where}: {message}", SEVERITY["liveness"], instance, details=dict(data),
                     ts=ts)
    if kind == "deploy_failed":
        return Alert("deploy", app, f"{app}: {message}", SEVERITY["deploy"], None, details=dict(data),
                     ts=ts)
    if kind == "job_failed":
        if not data.get("final") or data.get("outcome") == "replaced":
            return None
        return Alert("job_failed", app, message, SEVERITY["job_failed"], instance, details=dict(data), ts=ts)
    if kind == "profile" and data.get("trigger", "manual") != "manual":
        return Alert("snapshot", app, f"{where}: automatic {message}", SEVERITY["snapshot"], instance,
                     details=dict(data), ts=ts)
    return None


def _crash_details(report: dict[str, Any]) -> dict[str, Any]:
    keep = ("code", "signal", "pid", "language", "exc_type", "message", "classification", "frames")
    details = {key: report.get(key) for key in keep if report.get(key) is not None}
    details["tail"] = [str(line)[:500] for line in list(report.get("tail") or [])[-20:]]
    return details


def _threshold(app: str, instance: int | None, data: dict[str, Any], ts: float) -> Alert:
    metric = str(data.get("metric") or "?")
    mount = str(data.get("mount") or "")
    cleared = bool(data.get("cleared"))
    subject = app or "host"
    if instance is not None:
        subject = f"{app}[{instance}]"
    on = f"{subject}" + (f" {mount}" if mount else "")
    value, limit = data.get("value"), data.get("limit")
    verb = "back within" if cleared else "over"
    title = f"{metric} {verb} the threshold on {on}: {_figure(value)} (limit {_figure(limit)})"
    kind = "threshold_cleared" if cleared else "threshold"
    details = {k: data.get(k) for k in ("metric", "value", "limit", "samples", "mount") if data.get(k) is not None}
    return Alert(kind, app, title, SEVERITY[kind], instance, mount=mount, metric=metric, details=details, ts=ts)


def _figure(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


class AlertEngine:
    """The alerting decisions for a set of sinks (names and ``min_severity``).

    ``raise_alert(alert, now)`` -> the deliveries to attempt now; ``result(delivery, ok,
    reason, now)`` -> whether to retry (``delivery.retry_at`` is set) or it is final.
    """

    def __init__(self, sinks: list[dict[str, Any]] | None = None, prefix: str = "a") -> None:
        self.prefix = prefix
        self.sinks: dict[str, str] = {}  # name -> min_severity
        self.sent: dict[tuple[str, tuple[str, str, str, str]], float] = {}  # (sink, key) -> when last sent
        self.suppressed: dict[tuple[str, tuple[str, str, str, str]], int] = {}
        self.counted: dict[tuple[str, str], int] = {}  # (app, classification) -> crashes not paged
        self.gave_up = 0  # deliveries dropped because a sink's queue was full
        self.numbers = 0
        self._queued: dict[str, int] = {}
        self._firing: dict[tuple[str, str, str], set[str]] = {}  # (app, mount, metric) -> sinks that took it
        self._why: dict[tuple[str, int | None], str] = {}
        self.configure(sinks or [])

    def configure(self, sinks: list[dict[str, Any]]) -> None:
        self.sinks = {sink["name"]: sink.get("min_severity", "warning") for sink in sinks}

    def on_event(self, kind: str, app: str, instance: int | None, message: str, data: dict[str, Any],
                 ts: float, now: float) -> tuple[Alert | None, list[Delivery]]:
        """An event from the bus: the alert it raises (None when it raises none) and its deliveries.

        ``errored``: the lifecycle's ``errored`` note (with why) comes before the state change
        to ``errored``, which alone raises the alert (an instance with autorestart off that
        fails has the state change only)."""
        if kind == "errored":  # the note: remembered for the state change that follows
            self._why[(app, instance)] = message
            return None, []
        if kind == "state":
            if data.get("to") != "errored":
                return None, []
            kind, message = "errored", self._why.pop((app, instance), "")
        found = alert_for(kind, app, instance, message, data, ts)
        if isinstance(found, str):
            key = (app, found)
            self.counted[key] = self.counted.get(key, 0) + 1
            return None, []
        if found is None:
            return None, []
        return found, self.raise_alert(found, now)

    def raise_alert(self, alert: Alert, now: float) -> list[Delivery]:
        """Number the alert; the deliveries it makes now (none for a sink that does not take it, or
        while an identical one was sent to that sink less than :data:`REPEAT` ago)."""
        self._number(alert)
        out = []
        for sink, floor in self.sinks.items():
            if not self._takes(sink, floor, alert):
                continue
            key = (sink, alert.key)
            last = self.sent.get(key)
            if last is not None and now - last < REPEAT:
                self.suppressed[key] = self.suppressed.get(key, 0) + 1
                continue
            if self._queued.get(sink, 0) >= MAX_QUEUED:
                self.gave_up += 1
                continue
            self.sent[key] = now
            out.append(Delivery(alert, sink, suppressed=self.suppressed.pop(key, 0)))
            self._queued[sink] = self._queued.get(sink, 0) + 1
            if alert.kind == "threshold":
                self._firing.setdefault((alert.app, alert.mount, alert.metric), set()).add(sink)
        if alert.kind == "threshold_cleared":
            self._firing.pop((alert.app, alert.mount, alert.metric), None)
        return out

    def _number(self, alert: Alert) -> None:
        self.numbers += 1
        alert.number, alert.prefix = self.numbers, self.prefix

    def _takes(self, sink: str, floor: str, alert: Alert) -> bool:
        if alert.kind == "threshold_cleared":  # the resolve goes where the alert went
            return sink in self._firing.get((alert.app, alert.mount, alert.metric), ())
        return _rank(alert.severity) >= _rank(floor)

    def test(self, alert: Alert) -> list[Delivery]:
        """``corral alerts test``: one delivery per sink, whatever its min_severity, never collapsed."""
        self._number(alert)
        return [Delivery(alert, sink, queued=False) for sink in self.sinks]

    def result(self, delivery: Delivery, ok: bool, reason: str, now: float, retry: bool = True) -> Delivery:
        """Record one attempt: delivered, or retried after the next :data:`BACKOFF` step, or (the
        steps spent, or ``retry`` False) undelivered with ``reason``."""
        delivery.attempts += 1
        delivery.reason = reason
        if ok:
            delivery.outcome, delivery.retry_at = "delivered", None
        elif retry and delivery.attempts <= len(BACKOFF):
            delivery.retry_at = now + BACKOFF[delivery.attempts - 1]
            return delivery
        else:
            delivery.outcome, delivery.retry_at = "undelivered", None
            if delivery.queued:  # the person never got it: the next identical one is not held back
                self.sent.pop((delivery.sink, delivery.alert.key), None)
        if delivery.queued:
            self._queued[delivery.sink] = max(0, self._queued.get(delivery.sink, 0) - 1)
        return delivery
