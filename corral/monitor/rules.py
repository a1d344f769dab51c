"""Thresholds, decided: pure (no IO, no clock), one sample at a time.

A :class:`Line` is a limit with its lower line (hysteresis, netdata-style) and how many samples
make a crossing: ``samples`` over the line within the last ``window`` ones (``window ==
samples``: N consecutive, the mail provider's rule; more: Monit's "N of M cycles").  Once crossed,
a subject stays crossed until ``samples`` consecutive samples are past the lower line: a value
that hovers at the limit raises one alert, not one per sample.

:class:`Rules` keeps the state of every subject (a metric of the host, of a mount or of one
instance's process tree) and returns the :class:`~corral.events.Threshold` event of a crossing or
a clearing; the caller publishes it.  ``max_memory_restart`` is a line like the others, whose
crossing the caller acts on.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from corral.events import Threshold

#: host-wide defaults (the mail provider's, done right); ``process_memory`` is per instance tree
DEFAULTS: dict[str, Any] = {"memory_available": 25.0, "cpu": 80.0, "disk": 75.0,
                            "process_memory": 2 * 1024**3, "samples": 2, "window": None}
BELOW = ("memory_available",)  # alert when the value is AT OR BELOW the limit
PERCENT_MARGIN = 5.0  # points between a percentage's limit and its lower line
SIZE_MARGIN = 0.9  # a memory limit's lower line: 90 % of it


class Line(NamedTuple):
    metric: str
    limit: float
    clear: float  # the lower line: past it (the good side) counts towards clearing
    below: bool  # alert at or below the limit (else at or above)
    samples: int
    window: int


def line(metric: str, limit: float, samples: int = 2, window: int | None = None) -> Line:
    below = metric in BELOW
    if metric in ("process_memory", "max_memory_restart"):
        clear = limit * SIZE_MARGIN
    else:
        clear = min(100.0, limit + PERCENT_MARGIN) if below else max(0.0, limit - PERCENT_MARGIN)
    return Line(metric, float(limit), clear, below, samples, max(samples, window or samples))


class Subject(NamedTuple):
    """What a value is of: the host (``app`` ""), a mount, or one instance (its pid: a new process
    starts clean)."""

    metric: str
    app: str = ""
    instance: int | None = None
    pid: int | None = None
    mount: str = ""


class Watch(NamedTuple):
    recent: tuple[bool, ...]  # over the line, for the last ``window`` samples (newest last)
    active: bool
    calm: int  # consecutive samples past the lower line while active
    value: float


def over(ln: Line, value: float) -> bool:
    return value <= ln.limit if ln.below else value >= ln.limit


def calm(ln: Line, value: float) -> bool:
    return value > ln.clear if ln.below else value < ln.clear


def step(watch: Watch | None, ln: Line, value: float) -> tuple[Watch, str | None]:
    """The next state of one subject, and ``"crossed"``, ``"cleared"`` or None."""
    recent = (*(watch.recent if watch else ()), over(ln, value))[-ln.window:]
    if watch is None or not watch.active:
        if sum(recent) >= ln.samples:
            return Watch((), True, 0, value), "crossed"
        return Watch(recent, False, 0, value), None
    quiet = watch.calm + 1 if calm(ln, value) else 0
    if quiet >= ln.samples:
        return Watch((), False, 0, value), "cleared"
    return Watch((), True, quiet, value), None


def _event(subject: Subject, ln: Line, value: float, cleared: bool) -> Threshold:
    return Threshold(app=subject.app, instance=subject.instance, metric=subject.metric, value=round(value, 2),
                     limit=ln.clear if cleared else ln.limit, cleared=cleared, mount=subject.mount,
                     samples=ln.samples)


class Rules:
    """The state of every subject; :meth:`observe` one value, :meth:`forget` the subjects gone."""

    def __init__(self) -> None:
        self.watches: dict[Subject, tuple[Watch, Line]] = {}

    def observe(self, subject: Subject, ln: Line, value: float) -> Threshold | None:
        found = self.watches.get(subject)
        watch, change = step(found[0] if found is not None else None, ln, value)  # a new line keeps the state
        self.watches[subject] = (watch, ln)
        if change is None:
            return None
        return _event(subject, ln, value, change == "cleared")

    def active(self, subject: Subject) -> bool:
        found = self.watches.get(subject)
        return found is not None and found[0].active

    def forget(self, seen: set[Subject]) -> list[Threshold]:
        """Drop the subjects not seen this time (an instance gone, a mount unmounted); an active
        one is cleared (with its last value), so an alert never stays open for nothing."""
        out = []
        for subject in [s for s in self.watches if s not in seen]:
            watch, ln = self.watches.pop(subject)
            if watch.active and subject.metric != "max_memory_restart":
                out.append(_event(subject, ln, watch.value, True))
        return out


def host_lines(settings: dict[str, Any]) -> dict[str, Line]:
    """The host's lines from its thresholds (defaults where not given)."""
    merged = {**DEFAULTS, **settings}
    return {m: line(m, merged[m], merged["samples"], merged["window"])
            for m in ("memory_available", "cpu", "disk", "process_memory")}


def app_lines(host: dict[str, Any], own: dict[str, Any], max_memory: int | None) -> dict[str, Line]:
    """An instance's lines: ``process_memory`` (the app's, else the host's), ``cpu`` only when the
    app sets one (a busy worker is no alert by default), ``max_memory_restart`` when set."""
    merged = {**DEFAULTS, **host}
    samples = own.get("samples", merged["samples"])
    window = own.get("window", merged["window"] if "samples" not in own else None)
    out = {"process_memory": line("process_memory", own.get("process_memory", merged["process_memory"]),
                                  samples, window)}
    if "cpu" in own:
        out["cpu"] = line("cpu", own["cpu"], samples, window)
    if max_memory:
        out["max_memory_restart"] = line("max_memory_restart", max_memory, samples, window)
    return out
