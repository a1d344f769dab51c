"""Liveness probes run: the same probe code as readiness (:func:`corral.health.probes.check`),
on the core's timers; the decisions are :mod:`corral.health.liveness`'s; a replacement goes
through ``core.call("replace")`` (new instance first when the app has a socket).

Loaded by the daemon when an instance of an app with ``health`` comes online
(``corral.daemon.main.liveness_on_demand``); then every online instance of such an app has
a chain of probes, one every ``interval``, which ends when the instance does.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import TYPE_CHECKING, Any, Callable

from corral.events import Note

from corral.feature_events import LivenessFailed, ProbeResult
from corral.health import liveness as lv
from corral.health.probes import AnsweredElsewhere, check
from corral.process.procfs import live_groups

if TYPE_CHECKING:
    from corral.daemon.core import Core
    from corral.daemon.core import AppView, InstanceView

log = logging.getLogger("corral.daemon")
Key = tuple[str, int]


class _Reaper:
    """The probes' reaper: the core's (a cmd probe's exit reaches the daemon's one reaper)."""

    def __init__(self, core: Core) -> None:
        self.core = core

    def watch(self, pid: int, callback: Callable[[int, int | None, str | None], None]) -> None:
        self.core.watch_child(pid, callback)


class LivenessService:
    def __init__(self, core: Core) -> None:
        self.core = core
        self.decide = lv.Liveness()
        self.reaper = _Reaper(core)
        self.chains: dict[Key, Any] = {}  # (app, instance) -> its timer handle
        self._tasks: set[asyncio.Task[Any]] = set()
        self.probes = 0

    def close(self) -> None:
        for handle in self.chains.values():
            handle.cancel()
        self.chains.clear()
        for task in list(self._tasks):
            task.cancel()

    def scan(self) -> None:
        """Start a chain for every online instance of an app with a liveness probe that has none."""
        keep: set[Key] = set()
        for app in self.core.view().apps:
            if not app.health:
                continue
            for inst in app.instances:
                key = (app.name, inst.index)
                keep.add(key)
                if key not in self.chains and inst.status == "online" and inst.pid is not None:
                    self._schedule(key, float(app.health["interval"]))
        self.decide.forget(keep | set(self.chains))

    def _schedule(self, key: Key, delay: float) -> None:
        self.chains[key] = self.core.timers.after(delay, lambda: self._fire(key))

    def _fire(self, key: Key) -> None:
        snap = self.core.view()
        app = snap.app(key[0])
        inst = next((i for i in app.instances if i.index == key[1]), None) if app is not None else None
        if app is None or not app.health or inst is None or inst.pid is None or inst.status != "online":
            self.chains.pop(key, None)  # the chain ends with the instance: a scan starts the next
            self.decide.should_probe(key[0], key[1], None, "gone", None, False)
            return
        interval = float(app.health["interval"])
        if self.decide.should_probe(app.name, inst.index, inst.pid, inst.status, inst.started_at,
                                    paused=app.mutation is not None):
            self._spawn(self._probe(app, inst, interval))
        else:
            self._schedule(key, interval)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _probe(self, app: AppView, inst: InstanceView, interval: float) -> None:
        key, probe, pid = (app.name, inst.index), dict(app.health or {}), inst.pid or 0
        owner, several = _owner(pid), len(app.instances) > 1 and bool(app.listen)
        try:
            ok, detail = await check(probe, list(app.listen), self.reaper, app.cwd, dict(os.environ),
                                     owner if app.listen else None, elsewhere=several)
        except AnsweredElsewhere:  # another instance took it: nothing learnt about this one
            self._schedule(key, interval)
            return
        self.probes += 1
        self.core.publish(ProbeResult(app=app.name, instance=inst.index, probe=str(probe["kind"]), ok=ok,
                                      detail=detail, purpose="live"))
        verdict = self.decide.observe(app.name, inst.index, pid, ok, self.core.clock.now(),
                                      int(probe["failures"]), float(probe["start_period"]))
        if verdict.outcome in ("failed", "replace"):
            self.core.publish(LivenessFailed(app=app.name, instance=inst.index, probe=str(probe["kind"]),
                                             detail=detail, failures=verdict.failures, threshold=verdict.threshold,
                                             pid=pid, replacing=verdict.outcome == "replace"))
        if verdict.outcome == "replace":
            self.chains.pop(key, None)
            await self._replace(app.name, inst.index, pid, f"liveness: {verdict.failures} {probe['kind']} "
                                f"probes failed in a row ({detail})"[:500])
            return
        self._schedule(key, interval)

    async def _replace(self, app: str, instance: int, pid: int, reason: str) -> None:
        try:
            result = await self.core.call("replace", target=app, instance=instance, reason=reason,
                                          by="liveness probe")
        except Exception as exc:  # gone, or another change holds the app: counting starts again
            self.core.publish(Note(app=app, instance=instance, kind="liveness_restart_failed",
                                   message=f"could not replace it: {exc}", data={"error": str(exc)}))
        else:
            how = "new instance first" if result.get("how") == "rolling" else "stop_signal, then restarted"
            self.core.publish(Note(app=app, instance=instance, kind="liveness_restarted",
                                   message=f"replaced ({how}): " + "; ".join(result.get("replaced", [])),
                                   data={"how": result.get("how"), "reason": reason}))
        finally:
            self.decide.replaced(app, instance, pid)
        self.scan()

    def status(self) -> dict[str, Any]:
        return {"probes": self.probes, "watched": sorted(f"{a}[{i}]" for a, i in self.chains)}


def _owner(pid: int) -> Callable[[], set[int]]:
    def group() -> set[int]:  # the instance's processes: a probe counts only if one of them answered
        members = live_groups({pid}, within=os.getpid()).get(pid, [])
        return {m.pid for m in members}

    return group


def service_of(core: Core) -> LivenessService:
    features: dict[str, Any] = getattr(core, "features", {})
    service = features.get("liveness")
    if service is None:
        service = features["liveness"] = LivenessService(core)
    return service
