"""The pure parts of ``corral monit``: sparklines, the rows of the instance table, which key does
what, the confirmation asked before an action, the timeline's lines and the log search.

No textual here and no IO: plain functions and small classes, tested on their own
(``tests/unit/test_tui_model.py``); ``cli.tui.app`` draws what they compute.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

from corral.cli.render import clean, duration, size

BARS = "▁▂▃▄▅▆▇█"
SPARK_WIDTH = 20  # characters of a sparkline: one per history bucket (the newest on the right)
HISTORY = 600  # seconds of history the sparklines show ("the last minutes")
LOG_LINES = 2000  # lines of the selected app's logs kept for scrolling and search
REFILL = 500  # the newest matching lines drawn again when the search changes
TIMELINE = 200  # events of the selected app kept on its timeline
#: Live events the timeline leaves out: they would bury the restarts it is there to explain.
NOISE = frozenset({"state", "probe", "sweep"})


def sparkline(values: list[float], width: int = SPARK_WIDTH, floor: float | None = 0.0,
              ceiling: float = 0.0) -> str:
    """VALUES fitted to ``width`` bars (:func:`fit`), scaled from ``floor`` (or their lowest, when
    ``floor`` is None) to their highest or ``ceiling``, whichever is higher; right-aligned, padded
    with spaces.  A flat series (or all zero) is the lowest bar."""
    values = fit(values, width)
    if not values:
        return " " * max(0, width)
    low = min(values) if floor is None else min(floor, *values)
    span = max(max(values), ceiling) - low
    bars = "".join(BARS[0] if span <= 0 else BARS[min(7, int((v - low) / span * 8))] for v in values)
    return bars.rjust(width)


def fit(values: list[float], width: int) -> list[float]:
    """At most ``width`` values: consecutive ones averaged in groups, the newest group whole."""
    if width <= 0:
        return []
    if len(values) <= width:
        return list(values)
    group = -(-len(values) // width)  # ceil
    start = len(values) % group
    head = [sum(values[:start]) / start] if start else []
    body = [sum(values[i:i + group]) / group for i in range(start, len(values), group)]
    return (head + body)[-width:]


def cpu_line(values: list[float], width: int = SPARK_WIDTH) -> str:
    """CPU from 0 %, at least 10 % high: an idle app's jitter stays at the bottom."""
    return sparkline(values, width, 0.0, 10.0)


def memory_line(values: list[float], width: int = SPARK_WIDTH) -> str:
    """Memory from its lowest, at least a quarter above it: a leak climbs, a few KiB of jitter
    does not look like one."""
    return sparkline(values, width, None, min(values) * 1.25 if values else 0.0)


# -- the instance table ------------------------------------------------------------------------
@dataclass(frozen=True)
class Row:
    """One instance as the table shows it (strings ready to draw, plus what the keys act on)."""

    key: str  # "app:instance", the history's key too
    app: str
    instance: int
    cells: tuple[str, ...]
    status: str


COLUMNS = ("app", "id", "inst", "status", "pid", "cpu", "cpu history", "memory", "memory history",
           "restarts", "uptime")


def rows(ls_rows: list[dict[str, Any]], report: dict[str, Any] | None, now: float,
         width: int = SPARK_WIDTH) -> list[Row]:
    """The table: one row per instance of ``ls``, with sparklines of the ``metrics`` history
    (``report``: its answer, or None).  CPU and memory are the report's latest sample of the same
    pid when it has one (it comes every interval; ``ls`` only after an event), else ``ls``'s."""
    series = ((report or {}).get("history") or {}).get("instances") or {}
    latest = {(i.get("app"), i.get("instance")): i for i in (report or {}).get("instances") or []}
    out = []
    for r in ls_rows:
        key = f"{r['name']}:{r['instance']}"
        points = series.get(key) or []
        cpu = [float(p[1]) for p in points]
        mem = [float(p[2]) for p in points]
        up = duration(now - r["started_at"]) if r.get("started_at") and r.get("pid") else "-"
        sample = latest.get((r["name"], r["instance"]))
        if sample is not None and r.get("pid") and sample.get("pid") == r["pid"]:  # newer than ls's
            cpu_now, rss_now = float(sample.get("cpu") or 0), int(sample.get("rss") or 0)
        else:
            cpu_now, rss_now = float(r.get("cpu_percent") or 0), int(r.get("memory_bytes") or 0)
        cells = (
            clean(r["name"]), "-" if r.get("id") is None else str(r["id"]), str(r["instance"]), r["status"],
            str(r["pid"]) if r.get("pid") else "-", f"{cpu_now:.1f}%",
            cpu_line(cpu, width), size(rss_now), memory_line(mem, width),
            str(r.get("restarts", 0)), up,
        )
        out.append(Row(key, r["name"], int(r["instance"]), cells, r["status"]))
    return out


def summary(ls_rows: list[dict[str, Any]], report: dict[str, Any] | None) -> str:
    """The line above the table: how many apps and instances, how many online, the host."""
    apps = len({r["name"] for r in ls_rows})
    online = sum(1 for r in ls_rows if r["status"] == "online")
    text = f"{apps} app(s), {len(ls_rows)} instance(s), {online} online"
    host = (report or {}).get("host") or {}
    if host:
        text += f"  |  host cpu {host['cpu']:.0f}%, memory available {host['memory_available']:.0f}%"
        if host.get("load"):
            text += f", load {host['load'][0]:.2f}"
    return text


# -- keys and confirmation ------------------------------------------------------------------------
@dataclass(frozen=True)
class Action:
    """Something a key does to the selected app: ``op`` and its arguments, the question asked."""

    name: str
    op: str
    args: dict[str, Any]
    question: str


#: key -> (action, what the footer says)
KEYS = {
    "r": ("restart", "restart"),
    "R": ("reload", "reload"),
    "s": ("stop", "stop"),
    "S": ("start", "start"),
    "plus": ("scale_up", "+1 instance"),
    "minus": ("scale_down", "-1 instance"),
}


def action_for(key: str, app: str | None, instances: int) -> Action | None:
    """The action KEY asks for on APP (which has INSTANCES instances), or None: no app selected,
    not an action key, or a scale down below one instance."""
    if app is None or key not in KEYS:
        return None
    name = KEYS[key][0]
    shown = clean(app)
    if name == "scale_up":
        return Action(name, "scale", {"target": app, "count": "+1"},
                      f"scale {shown} from {instances} to {instances + 1} instance(s)?")
    if name == "scale_down":
        if instances <= 1:
            return None
        return Action(name, "scale", {"target": app, "count": "-1"},
                      f"scale {shown} from {instances} to {instances - 1} instance(s)?")
    args: dict[str, Any] = {"target": app}
    if name == "reload":
        args["parallel"] = 1
    what = {"restart": "restart", "reload": "reload (rolling, zero-downtime)", "stop": "stop",
            "start": "start"}[name]
    return Action(name, name, args, f"{what} {shown}?")


class Confirm:
    """The question before an action: ``y`` does it, any other key (Escape, ``n``...) drops it.
    At most one question is open; a new one replaces it."""

    YES = frozenset({"y", "Y"})

    def __init__(self) -> None:
        self.pending: Action | None = None

    def ask(self, action: Action) -> str:
        self.pending = action
        return f"{action.question}  y: yes, any other key: no"

    def answer(self, key: str) -> Action | None:
        """The action to do now (``y``), or None; the question is closed either way."""
        action, self.pending = self.pending, None
        return action if action is not None and key in self.YES else None


def instances_of(ls_rows: list[dict[str, Any]], app: str | None) -> int:
    return sum(1 for r in ls_rows if r["name"] == app)


# -- the timeline -------------------------------------------------------------------------------
def timeline_line(ev: dict[str, Any]) -> str:
    """One event of the selected app: time, instance, kind and message; a crash says its
    classification and the last frame, so "why did this restart?" has its answer on one line."""
    when = time.strftime("%H:%M:%S", time.localtime(ev.get("ts") or 0))
    where = "" if ev.get("instance") is None else f"[{ev['instance']}]"
    text = f"{when} {where:<4} {ev.get('kind', '?'):<12} {ev.get('message', '')}"
    data = ev.get("data") or {}
    if ev.get("kind") == "crash" and data.get("frames"):
        text += f"  at {data['frames'][-1]}"
    return clean(text)


def keep_on_timeline(ev: dict[str, Any], app: str | None) -> bool:
    return app is not None and ev.get("app") == app and ev.get("kind") not in NOISE


def merge_timeline(history: list[dict[str, Any]], live: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The stored history, then the live events that came while it loaded and are not in it (the
    stream and the history can both hold an event that happened in between)."""
    seen = {_identity(ev) for ev in history}
    return history + [ev for ev in live if _identity(ev) not in seen]


def _identity(ev: dict[str, Any]) -> tuple[Any, ...]:
    return ev.get("ts"), ev.get("kind"), ev.get("instance"), ev.get("message")


CAUSES = ("crash", "exit", "memory_restart", "liveness_failed", "watchdog", "crash_loop", "restart", "reload",
          "threshold", "not_ready")


def restart_reason(events: list[dict[str, Any]]) -> str | None:
    """The answer to "why did it last restart?": the newest event that ends an instance on its own
    or replaces it (crash, unrequested exit, memory restart, liveness, watchdog...), or None.  An
    exit right after its crash report is the crash (it says more)."""
    for n in range(len(events) - 1, -1, -1):
        ev = events[n]
        if ev.get("kind") not in CAUSES:
            continue
        if ev.get("kind") == "exit" and n > 0:
            before = events[n - 1]
            if before.get("kind") == "crash" and before.get("instance") == ev.get("instance"):
                ev = before
        return timeline_line(ev)
    return None


# -- event stream -----------------------------------------------------------------------------------
@dataclass
class Inbox:
    """What the subscription brought since the last look: whether the table is out of date,
    the selected app's new timeline events, and events lost by a slow reader."""

    stale: bool = False
    events: list[dict[str, Any]] = field(default_factory=list)
    dropped: int = 0

    def take(self, message: dict[str, Any]) -> None:
        if "dropped" in message:
            self.dropped = int(message["dropped"])
            self.stale = True
        elif "event" in message:
            self.stale = True  # a spawn, an exit, a state change, a scale...: ``ls`` once
            self.events.append(message["event"])
            del self.events[:-TIMELINE]


# -- log search -----------------------------------------------------------------------------------------
def matcher(text: str) -> re.Pattern[str] | None:
    """The search typed: a regular expression, or the text itself when it is not one; case is
    ignored unless the search has a capital letter (as in less and vim's smartcase).  Empty: None."""
    if not text:
        return None
    flags = 0 if any(c.isupper() for c in text) else re.IGNORECASE
    try:
        return re.compile(text, flags)
    except (re.error, RecursionError, OverflowError, ValueError):
        return re.compile(re.escape(text), flags)


def log_line(label: str, text: str) -> str:
    return clean(f"{label} | {text}")


def found(lines: list[str], pattern: re.Pattern[str] | None) -> list[str]:
    return lines if pattern is None else [line for line in lines if pattern.search(line)]
