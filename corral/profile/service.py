"""The daemon's side of profiling: it starts the helper (:mod:`corral.profile.run`) as its child,
waits for its one JSON line with a deadline (killing it past that), and takes the automatic
snapshots of P3.  Loaded on first use: a daemon nobody asks to profile never imports it.

Why the daemon starts the tracer (and not the CLI): with Yama's ``ptrace_scope = 1`` only a
tracee's ancestors, or the process it named with ``PR_SET_PTRACER`` and that one's descendants,
may trace it.  The exec shim names the daemon, so py-spy started under the daemon may trace the
app and nothing else of the user's may: the narrow grant (``PR_SET_PTRACER_ANY`` would let any
process of the user read the app's memory).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
from typing import TYPE_CHECKING, Any

from corral.events import Threshold

from corral.feature_events import Evidence, Profiled
from corral.exceptions import OperationFailed
from corral.profile import artifacts

if TYPE_CHECKING:
    from corral.daemon.core import Core

EVIDENCE_TIMEOUT = 3.0  # seconds py-spy dump may take before a replacement goes ahead without it
EVIDENCE_HEAP = 4.0  # seconds the heap snapshot before a max_memory_restart may take (at the same time)
AUTO_EVERY = 3600.0  # automatic snapshots: at most one per app per hour
AUTO_CPU = 10  # seconds of CPU profile with an automatic snapshot
AUTO_METRICS = ("process_memory",)


class HelperFailed(OperationFailed):
    """The helper said no (one line) or did not answer in time."""


def deadline_for(job: dict[str, Any]) -> float:
    what = job["what"]
    if what == "cpu":
        return float(job.get("duration") or 30) + 60.0
    if what == "evidence":
        return float(job.get("timeout") or EVIDENCE_TIMEOUT) + 2.0
    if what == "heap":
        return float(job.get("timeout") or 120) + 3.0
    return float(job.get("timeout") or 10) + 10.0


async def run_helper(core: Core, job: dict[str, Any], python: str = sys.executable) -> dict[str, Any]:
    """Run the helper for JOB as the daemon's child: its answer, or :class:`HelperFailed`."""
    loop = asyncio.get_running_loop()
    deadline = deadline_for(job)
    with tempfile.TemporaryFile() as out:
        try:
            popen = subprocess.Popen([python, "-m", "corral.profile.run", json.dumps(job)], stdin=subprocess.DEVNULL,
                                     stdout=out, stderr=subprocess.DEVNULL, close_fds=True, process_group=0)
        except OSError as exc:
            raise HelperFailed(f"cannot start the profiling helper: {exc.strerror}") from None
        exited: asyncio.Future[None] = loop.create_future()

        def finish() -> None:
            if not exited.done():
                exited.set_result(None)

        def done(*_: object) -> None:
            loop.call_soon_threadsafe(finish)

        if not core.watch_child(popen.pid, done):
            loop.run_in_executor(None, popen.wait).add_done_callback(done)
        try:
            await asyncio.wait_for(asyncio.shield(exited), deadline)
        except (TimeoutError, asyncio.CancelledError) as exc:
            try:
                os.killpg(popen.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            if isinstance(exc, asyncio.CancelledError):
                raise
            raise HelperFailed(f"the profiler gave no answer within {deadline:g}s (stopped)") from None
        finally:
            popen.returncode = 0  # reaped by the daemon's reaper (or the executor): never by Popen
        out.seek(0)
        raw = out.read(1 << 20).decode(errors="replace").strip().splitlines()
    try:
        answer = json.loads(raw[-1])
    except (ValueError, IndexError):
        raise HelperFailed("the profiling helper gave no result") from None
    if not answer.get("ok"):
        raise HelperFailed(str(answer.get("error") or "the profiler failed"))
    return dict(answer)


class AutoLimit:
    """PURE: at most one automatic snapshot per app per ``every`` seconds (monotonic time)."""

    def __init__(self, every: float = AUTO_EVERY) -> None:
        self.every = every
        self.last: dict[str, float] = {}

    def allow(self, app: str, now: float) -> bool:
        last = self.last.get(app)
        if last is not None and now - last < self.every:
            return False
        self.last[app] = now
        return True


class ProfileService:
    """Evidence before a replacement, and automatic snapshots when memory crosses its line."""

    def __init__(self, core: Core, home: str) -> None:
        self.core = core
        self.home = home
        self.limit = AutoLimit()
        self.tasks: set[asyncio.Task[Any]] = set()
        self.taken = 0

    def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()

    def job(self, what: str, app: str, instance: int, pid: int, **extra: Any) -> dict[str, Any]:
        return {"what": what, "app": app, "instance": instance, "pid": pid,
                "dir": artifacts.app_dir(self.home, app), **extra}

    async def evidence(self, app: str, instance: int, pid: int, reason: str, logs: list[str]) -> Evidence:
        """H4: what PID was doing (bounded by EVIDENCE_TIMEOUT; LOGS, its log files, when it runs no
        Python or gives no stack); before a max_memory_restart, a heap snapshot too (once an hour)."""
        job = self.job("evidence", app, instance, pid, timeout=EVIDENCE_TIMEOUT, logs=logs)
        heap = None  # the heap snapshot, at the same time as the stacks: the wait is the longer of the two
        if reason.startswith("max_memory_restart") and self.limit.allow(app, self.core.clock.monotonic()):
            heap = asyncio.ensure_future(self.snapshot(app, instance, pid, "max_memory_restart", cpu=0,
                                                       timeout=EVIDENCE_HEAP))
        try:
            answer = await run_helper(self.core, job)
            how, text, why = str(answer["how"]), str(answer.get("text", "")), str(answer.get("why", ""))
        except HelperFailed as exc:
            how, text, why = "none", "", str(exc)
        files = (await heap).files if heap is not None else ()
        event = Evidence(app=app, instance=instance, pid=pid, reason=reason, how=how, text=text, why=why, files=files)
        self.core.publish(event)
        return event

    async def snapshot(self, app: str, instance: int, pid: int, trigger: str, cpu: int = AUTO_CPU,
                       timeout: float = 30.0) -> Profiled:
        """A heap snapshot (then a CPU profile of CPU seconds, when asked): one event naming the files."""
        files: list[str] = []
        errors = []
        for what, extra in (("heap", {"timeout": timeout}), ("cpu", {"duration": cpu})):
            if what == "cpu" and not cpu:
                continue
            try:
                answer = await run_helper(self.core, self.job(what, app, instance, pid, **extra))
                files.extend(answer.get("files", []))
            except HelperFailed as exc:
                errors.append(f"{what}: {exc}")
        self.taken += 1
        event = Profiled(app=app, instance=instance, what="heap" if not cpu else "heap+cpu", pid=pid,
                         files=tuple(files), trigger=trigger, error="; ".join(errors))
        self.core.publish(event)
        return event

    def on_threshold(self, event: Threshold) -> None:
        """An instance crossed its memory line: a heap snapshot and a CPU profile, once an hour per app."""
        if event.cleared or event.metric not in AUTO_METRICS or event.instance is None:
            return
        app = self.core.view().app(event.app)
        inst = next((i for i in app.instances if i.index == event.instance), None) if app else None
        if inst is None or inst.pid is None or not self.limit.allow(event.app, self.core.clock.monotonic()):
            return
        task = asyncio.get_running_loop().create_task(
            self.snapshot(event.app, event.instance, inst.pid, f"{event.metric} threshold"))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def status(self) -> dict[str, Any]:
        return {"automatic": self.taken, "running": len(self.tasks)}


def service_of(core: Core) -> ProfileService:
    """The daemon's one profile service (made on first use)."""
    features: dict[str, Any] = getattr(core, "features", {})
    service = features.get("profile")
    if service is None:
        home = getattr(core, "state_dir", None) or os.path.join(os.path.expanduser("~"), ".corral")
        service = features["profile"] = ProfileService(core, home)
    return service
