"""The jobs service on the daemon's core: one timer for the earliest due job, runs through the
core's one-off spawner (``Core.run_once``: an app's argv, environment and log files), the history
in ``jobs.db``, events on the bus.

The decisions are :class:`corral.jobs.schedule.Schedule`'s; this module carries them out.
Loaded when a file declares jobs, at the first maintenance run, or by ``corral jobs``.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import deque
from typing import TYPE_CHECKING, Any, Callable

from corral.events import JobFinished, JobSkipped, JobStarted
from corral.exceptions import OperationFailed, UserMistake
from corral.jobs.history import History
from corral.jobs.schedule import Action, Run, Schedule, Skipped, Stop, Trigger

if TYPE_CHECKING:
    from corral.daemon.core import DaemonCore

log = logging.getLogger("corral.daemon")


def _rand() -> float:
    """A number from 0 to 1 for jitter (``random`` is a module the daemon does without)."""
    return int.from_bytes(os.urandom(4), "little") / 2**32
FEATURE = "jobs"
TAIL_LINES = 20
Listener = Callable[[dict[str, Any]], None]


class Running:
    __slots__ = ("run_id", "trigger", "attempt", "started", "shot", "override", "tail", "timer", "listeners",
                 "partial")

    def __init__(self, run_id: int | None, trigger: str, attempt: int, started: float) -> None:
        self.run_id, self.trigger, self.attempt, self.started = run_id, trigger, attempt, started
        self.shot: Any = None
        self.override: str | None = None  # timeout | replaced
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)
        self.timer: Any = None
        self.listeners: list[Listener] = []
        self.partial = ""


class JobService:
    def __init__(self, core: DaemonCore, state_dir: str | None) -> None:
        self.core = core
        self.schedule = Schedule()
        try:
            self.history = History(os.path.join(state_dir, "jobs.db") if state_dir else ":memory:")
        except Exception as exc:  # noqa: BLE001 - an unusable file: jobs run without a kept history
            log.warning("jobs.db: history kept in memory only: %s", exc)
            self.history = History(":memory:")
        self.history.interrupted(core.clock.now())
        self.jobs: dict[str, dict[str, Any]] = {}
        self.running: dict[str, Running] = {}
        self.waiting: dict[str, Listener] = {}  # a manual run waiting for a replaced one to end
        self.handle: Any = None
        self.closed = False
        core.on_settings(self.configure)

    # -- configuration ---------------------------------------------------------------------
    def configure(self) -> None:
        if self.closed:
            return
        from corral.jobs import maintenance

        settings = self.core.settings()
        jobs = {job["name"]: job for job in settings.get("jobs") or ()}
        if settings.get("maintenance", True):
            jobs.update(maintenance.jobs(self.core, settings))
        jobs.update(cron_restarts(self.core))
        now = self.core.clock.now()
        for gone in set(self.jobs) - set(jobs):
            self.schedule.remove(gone)
        old, self.jobs = self.jobs, jobs
        paused = self.history.paused()
        for name, job in jobs.items():
            if old.get(name) == job:
                continue
            last_slot = self.history.slot(name)
            actions = self.schedule.load(name, Trigger.of(job), now, last_slot, _rand(), starting=name not in old)
            if self.schedule.states[name].last_slot != last_slot:  # a catch-up run: its time is kept
                self.history.set_slot(name, self.schedule.states[name].last_slot or now)
            self.schedule.pause(name, name in paused)
            self.apply(name, actions)
        self.arm()

    def close(self) -> None:
        self.closed = True
        if self.handle is not None:
            self.handle.cancel()
        for run in self.running.values():
            if run.shot is not None:
                run.override = "interrupted"

    # -- time ----------------------------------------------------------------------------
    def arm(self) -> None:
        """One timer, for the earliest due time of every job."""
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None
        due = self.schedule.next_due()
        if due is not None and not self.closed:
            self.handle = self.core.timers.after(max(0.0, due[0] - self.core.clock.now()), self.fire)

    def fire(self) -> None:
        self.handle = None
        now = self.core.clock.now()
        for _ in range(100_000):  # bounded: each turn consumes one due time
            due = self.schedule.next_due()
            if due is None or due[0] > now:
                break
            name = due[1]
            state = self.schedule.states[name]
            before = state.last_slot
            actions = self.schedule.fire(name, now, _rand())
            if state.last_slot != before and state.last_slot is not None:
                self.history.set_slot(name, state.last_slot)
            self.apply(name, actions)
        self.arm()

    # -- carrying out ----------------------------------------------------------------------
    def apply(self, name: str, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Run):
                self._start(name, action)
            elif isinstance(action, Skipped):
                now = self.core.clock.now()
                self.history.skipped(name, action.trigger, now, action.reason)
                self.history.prune(name, self.jobs.get(name, {}).get("history", 100))
                self.core.publish(JobSkipped(app=name, trigger=action.trigger, reason=action.reason))
            elif isinstance(action, Stop) and name in self.running:
                run = self.running[name]
                run.override = "replaced"
                if run.shot is not None:
                    run.shot.stop()

    def _start(self, name: str, action: Run) -> None:
        job = self.jobs[name]
        now = self.core.clock.now()
        run = Running(self.history.started(name, action.trigger, action.attempt, now), action.trigger,
                      action.attempt, now)
        self.running[name] = run
        listener = self.waiting.pop(name, None) if action.trigger == "manual" else None
        if listener is not None:
            run.listeners.append(listener)
        if job.get("restart"):  # cron_restart: a graceful reload of the app, as `corral reload` does
            asyncio.ensure_future(self._restart(name, run, job["restart"]))
            return
        env = {"CORRAL_JOB": name, "CORRAL_JOB_TRIGGER": action.trigger}
        prepare = job.get("prepare")
        if prepare is None:
            self._spawn(name, run, env)
            return

        async def prepared() -> None:
            try:
                env.update(await prepare(self.core))
            except Exception as exc:  # noqa: BLE001 - the run fails with the reason, the daemon goes on
                self._finish(name, run, None, None, "error", f"cannot prepare: {exc}")
                return
            self._spawn(name, run, env)

        asyncio.ensure_future(prepared())

    async def _restart(self, name: str, run: Running, app: str) -> None:
        self.core.publish(JobStarted(app=name, trigger=run.trigger, attempt=run.attempt))
        try:
            await self.core.call("reload", target=app)
        except Exception as exc:  # noqa: BLE001 - UserMistake, OperationFailed: the run failed, said once
            self._finish(name, run, None, None, "failed", str(exc).splitlines()[0] if str(exc) else repr(exc))
            return
        self._finish(name, run, None, None, "ok")

    def _spawn(self, name: str, run: Running, env: dict[str, str]) -> None:
        job = self.jobs.get(name)
        if job is None or self.closed:
            self._finish(name, run, None, None, "error", "the job was removed")
            return
        try:
            base_env = self.core.settings().get("jobs_env") or {}  # the shell of the file's `corral start`
            run.shot = self.core.run_once(job["spec"], base_env, lambda stream, chunk: self._output(run, stream, chunk),
                                          lambda code, sig: self._finish(name, run, code, sig), env)
        except OperationFailed as exc:
            self._finish(name, run, None, None, "error", str(exc))
            return
        self.core.publish(JobStarted(app=name, trigger=run.trigger, attempt=run.attempt, pid=run.shot.pid))
        if job.get("timeout"):
            def timed_out() -> None:
                run.override = run.override or "timeout"
                run.shot.stop()

            run.timer = self.core.timers.after(job["timeout"], timed_out)

    def _output(self, run: Running, stream: str, chunk: bytes) -> None:
        text = chunk.decode("utf-8", errors="replace")
        lines = (run.partial + text).split("\n")
        run.partial = lines.pop()[-2000:]
        run.tail.extend(line[-2000:] for line in lines)
        for listener in run.listeners:
            listener({"stream": stream, "text": text})

    def _finish(self, name: str, run: Running, code: int | None, sig: str | None, outcome: str | None = None,
                detail: str = "") -> None:
        if self.running.get(name) is run:
            del self.running[name]
        if run.timer is not None:
            run.timer.cancel()
        now = self.core.clock.now()
        outcome = outcome or run.override or ("ok" if code == 0 and sig is None else "failed")
        if run.partial:
            run.tail.append(run.partial)
        tail = list(run.tail)
        self.history.ended(run.run_id, now, code, sig, outcome, "\n".join(tail), detail or None)
        job = self.jobs.get(name)
        if job is not None:
            self.history.prune(name, job["history"])
        actions = self.schedule.exited(name, outcome == "ok", now) if name in self.schedule.states else []
        state = self.schedule.states.get(name)
        retry_in = state.retry_at - now if state is not None and state.retry_at is not None else None
        if outcome == "interrupted":
            return
        self.core.publish(JobFinished(app=name, trigger=run.trigger, outcome=outcome, attempt=run.attempt, code=code,
                                      signal=sig, duration=round(now - run.started, 3), tail=tail[-5:],
                                      retry_in=retry_in, detail=detail))
        for listener in run.listeners:
            listener({"end": {"outcome": outcome, "code": code, "signal": sig, "detail": detail}})
        self.apply(name, actions)
        self.arm()

    # -- operations --------------------------------------------------------------------------
    def job(self, name: str) -> dict[str, Any]:
        if name not in self.jobs:
            known = ", ".join(sorted(self.jobs)) or "none"
            raise UserMistake(f'no job named "{name}" (jobs: {known})')
        return self.jobs[name]

    def run_now(self, name: str, listener: Listener) -> None:
        """``corral jobs run NAME``: now, whatever its schedule; a running one is replaced only when
        its overlap is "replace"."""
        job = self.job(name)
        running = self.running.get(name)
        state = self.schedule.states[name]
        if (running is not None or state.retry_at is not None) and job["overlap"] != "replace":
            pid = f" (pid {running.shot.pid})" if running is not None and running.shot is not None else ""
            raise UserMistake(f"job {name} is running now{pid} (overlap = {job['overlap']}: a job never runs twice "
                              "at once); wait for it, or set overlap = \"replace\"")
        self.waiting[name] = listener
        self.apply(name, self.schedule.trigger(name, "manual", self.core.clock.now()))
        self.arm()

    def pause(self, name: str, paused: bool) -> None:
        self.job(name)
        self.schedule.pause(name, paused)
        self.history.set_paused(name, paused)

    def rows(self) -> list[dict[str, Any]]:
        rows = []
        for name, job in self.jobs.items():
            state = self.schedule.states.get(name)
            running = self.running.get(name)
            rows.append({
                "name": name, "schedule": describe(job), "builtin": bool(job.get("prepare") or job.get("restart")),
                "next": state.due if state is not None else None,
                "retry_at": state.retry_at if state is not None else None,
                "paused": bool(state and state.paused), "enabled": job["enabled"], "overlap": job["overlap"],
                "running": None if running is None else {
                    "pid": running.shot.pid if running.shot is not None else None, "since": running.started,
                    "trigger": running.trigger},
                "last": self.history.last(name),
            })
        return rows


def cron_restarts(core: DaemonCore) -> dict[str, dict[str, Any]]:
    """A ``restart:NAME`` job for each app with ``cron_restart`` (overlap skip: never two at once)."""
    from corral.config.jobs import DEFAULTS

    found = {}
    for app in core.view().apps:
        if app.cron_restart:
            found[f"restart:{app.name}"] = {**DEFAULTS, "name": f"restart:{app.name}", "cron": app.cron_restart,
                                            "history": 20, "spec": None, "restart": app.name}
    return found


def describe(job: dict[str, Any]) -> str:
    """The trigger as ``corral jobs`` shows it."""
    from corral.units import format_duration

    if job.get("cron"):
        return f"cron {job['cron']}" + (f" ({job['timezone']})" if job.get("timezone") else "")
    if job.get("interval"):
        return f"every {format_duration(job['interval'])}"
    if job.get("at"):
        import time

        return "at " + time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(job["at"]))
    return "on start"


def service_of(core: DaemonCore) -> JobService:
    """The running service (started now if needed)."""
    service = core.features.get(FEATURE)
    if service is None:
        service = JobService(core, core.state_dir)
        core.features[FEATURE] = service
        light = core.features.pop("maintenance", None)
        if light is not None:  # the plain maintenance timers: the service runs these jobs now
            light.close()
        service.configure()
    return service
