"""The monitor: on the daemon's timers, one reading per tick (``sampler``), kept (``history``),
judged (``rules``), acted on (``max_memory_restart``).  It uses the core only: its clock and
timers, ``view()`` for the instances, ``publish`` for the events, ``call("replace")`` to act.

On by default, every 10 s (``monitor_interval``), like PM2's.  The latest sample of each instance
is in ``core.latest`` (``ls`` and ``describe`` show it).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable

from corral.events import Note
from corral.monitor import rules as rl
from corral.monitor.sampler import Sampler, Target

if TYPE_CHECKING:
    from corral.daemon.core import DaemonCore, Handle
    from corral.monitor.history import History
    from corral.monitor.prometheus import Exporter

log = logging.getLogger("corral.daemon")
DEFAULT_INTERVAL = 10.0
Act = Callable[[str, int, str], object]  # (app, instance, reason): replace it


class Monitor:
    def __init__(self, core: DaemonCore, sampler: Sampler | None = None, history: History | None = None,
                 act: Act | None = None) -> None:
        self.core = core
        self.sampler = sampler or Sampler()
        self.history = history
        self.rules = rl.Rules()
        self.act = act or self._replace
        self.interval = 0.0
        self.handle: Handle | None = None
        self.ticks = 0
        self.last_ts = 0.0
        self.cost = 0.0  # seconds of the last tick
        self.failed = 0  # readings that raised (each logged)
        self.replacing: set[int] = set()  # pids being replaced
        self.exporter: Exporter | None = None  # GET /metrics, once metrics_listen is set
        self._tasks: set[Any] = set()

    def start(self) -> None:
        self.core.on_settings(self.configure)
        self.configure()

    def stop(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None

    def close(self) -> None:
        self.stop()
        if self.exporter is not None:
            self.exporter.close()
        if self.history is not None:
            self.history.close()

    def configure(self) -> None:
        """Apply the daemon-wide settings (at start, and whenever a file changes them)."""
        settings = self.core.settings()
        retention = settings.get("metrics_retention") or {}
        if self.history is not None:
            self.history.raw = retention.get("raw", self.history.raw)
            self.history.averaged = retention.get("averaged", self.history.averaged)
        interval = float(settings.get("monitor_interval", DEFAULT_INTERVAL))
        if interval != self.interval:
            self.stop()
            self.interval = interval
            self.handle = self.core.timers.every(interval, self.tick)
        if settings.get("metrics_listen") or self.exporter is not None:
            if self.exporter is None:  # loaded only then (the daemon's memory budget)
                from corral.monitor.prometheus import Exporter

                self.exporter = Exporter(self.core, self)
            self.exporter.configure()

    # -- one tick ------------------------------------------------------------------------
    def tick(self) -> None:
        import time

        began = time.perf_counter()
        try:
            self._tick()
        except Exception:  # a reading that fails never stops the next one
            self.failed += 1
            log.exception("monitor: a reading failed")
        self.cost = time.perf_counter() - began

    def _tick(self) -> None:
        snap = self.core.view()
        targets = [Target(a.name, i.index, i.pid, i.pgid, i.restarts, i.started_at)
                   for a in snap.apps for i in a.instances if i.pid is not None]
        clock = self.core.clock
        reading = self.sampler.read(targets, clock.monotonic(), clock.now())
        latest = {(i["app"], i["instance"]): i for i in reading["instances"]}
        self.core.latest = latest
        self.ticks += 1
        self.last_ts = reading["ts"]
        if self.history is not None:
            self.history.add(reading)
        self.judge(reading, {a.name: a for a in snap.apps})

    def judge(self, reading: dict[str, Any], apps: dict[str, Any]) -> None:
        """The rules, for the host, its mounts and every instance; events published, acts done."""
        host = dict(self.core.settings().get("thresholds") or {})
        lines = rl.host_lines(host)
        seen: set[rl.Subject] = set()
        found = []

        def observe(subject: rl.Subject, ln: rl.Line, value: float) -> Any:
            seen.add(subject)
            return self.rules.observe(subject, ln, value)

        for metric in ("memory_available", "cpu"):
            found.append(observe(rl.Subject(metric), lines[metric], reading["host"][metric]))
        for path, mount in reading["mounts"].items():
            found.append(observe(rl.Subject("disk", mount=path), lines["disk"], mount["used"]))
        for inst in reading["instances"]:
            app = apps.get(inst["app"])
            own = dict(app.thresholds or {}) if app is not None else {}
            max_memory = app.max_memory_restart if app is not None else None
            for metric, ln in rl.app_lines(host, own, max_memory).items():
                value = inst["cpu"] if metric == "cpu" else inst["rss"]
                subject = rl.Subject(metric, inst["app"], inst["instance"], inst["pid"])
                event = observe(subject, ln, value)
                if metric == "max_memory_restart":
                    if event is not None and not event.cleared:
                        self._over_memory(subject, ln, value)
                else:
                    found.append(event)
        found.extend(self.rules.forget(seen))
        self.replacing &= {s.pid for s in seen if s.pid is not None}
        for event in found:
            if event is not None:
                self.core.publish(event)

    # -- max_memory_restart --------------------------------------------------------------
    def _over_memory(self, subject: rl.Subject, ln: rl.Line, value: float) -> None:
        if subject.pid in self.replacing or subject.instance is None:
            return
        self.replacing.add(subject.pid or 0)
        mib = 1024 * 1024
        reason = (f"max_memory_restart: process tree at {value / mib:.1f} MiB, over {ln.limit / mib:.1f} MiB "
                  f"for {ln.samples} sample(s)")
        self.core.publish(Note(app=subject.app, instance=subject.instance, kind="memory_restart",
                               message=f"{reason}: replacing pid {subject.pid} gracefully",
                               data={"rss": int(value), "limit": int(ln.limit), "samples": ln.samples,
                                     "pid": subject.pid}))
        self.act(subject.app, subject.instance, reason)

    def _replace(self, app: str, instance: int, reason: str) -> None:
        import asyncio

        task = asyncio.ensure_future(self._call_replace(app, instance, reason))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _call_replace(self, app: str, instance: int, reason: str) -> None:
        try:
            result = await self.core.call("replace", target=app, instance=instance, reason=reason,
                                          by="max_memory_restart")
        except Exception as exc:  # the app went away, another change holds it ...: said, and tried again later
            self.core.publish(Note(app=app, instance=instance, kind="memory_restart_failed",
                                   message=f"could not replace it: {exc}", data={"error": str(exc)}))
            return
        how = "new instance first" if result.get("how") == "rolling" else "stop_signal, then restarted"
        self.core.publish(Note(app=app, instance=instance, kind="memory_restarted",
                               message=f"replaced ({how}): " + "; ".join(result.get("replaced", [])),
                               data={"how": result.get("how")}))

    # -- reports ---------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {"interval": self.interval, "ticks": self.ticks, "last": self.last_ts, "cost_ms": round(self.cost * 1000, 2),
               "failed": self.failed}
        if self.history is not None:
            out["history"] = self.history.status()
        if self.exporter is not None:
            out["prometheus"] = self.exporter.status()
        return out

    def report(self, apps: list[str] | None, since: int) -> dict[str, Any]:
        """What ``corral metrics`` shows: the latest reading's figures and the history."""
        latest = [i for i in self.core.latest.values() if apps is None or i["app"] in apps]
        now = self.core.clock.now()
        history = self.history.series(now - since, now, apps) if self.history is not None else {}
        return {"now": now, "interval": self.interval, "instances": sorted(latest, key=lambda i: (i["app"], i["instance"])),
                "host": self.sampler.last_host, "mounts": self.sampler.last_mounts, "history": history}
