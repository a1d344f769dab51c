"""The daemon side of alerts: bus events in, alerts out to the daemon log, ``corral events`` and
the sinks.

:class:`AlertService` subscribes on the core's bus to the kinds that may alert, runs the pure
engine (:mod:`corral.monitor.alerts`) on the core's clock, and carries out what it decides:
it publishes an ``Alert`` event (the history keeps it; ``corral events`` and ``corral alerts``
show it), logs one line to daemon.log, and hands each delivery to
``python -m corral.monitor.deliver`` — a subprocess, so TLS and the http/smtp libraries never
load into the daemon — at most :data:`CONCURRENCY` at a time, each killed after
:data:`DEADLINE` seconds.  A failed attempt is retried on the core's timers; the final outcome
of each delivery is an ``AlertDelivery`` event.  Nothing here blocks the loop or raises into it.

The daemon loads this module on the first event that may alert (``corral.daemon.main``), or
when ``corral alerts`` asks; the sinks come from the ecosystem file's ``[[sinks]]``
(:func:`configure`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
from collections import deque
from typing import TYPE_CHECKING, Any

from corral.feature_events import Alert as AlertEvent
from corral.events import Event
from corral.feature_events import AlertDelivery
from corral.monitor.alerts import KINDS, Alert, AlertEngine, Delivery

if TYPE_CHECKING:
    from corral.daemon.core import Core

__all__ = ["AlertService", "service_of", "configure"]

log = logging.getLogger("corral.daemon")

CONCURRENCY = 4  # deliveries running at once
DEADLINE = 20.0  # seconds one delivery process may take (its network timeout is NETWORK_TIMEOUT)
NETWORK_TIMEOUT = 10.0
MAX_JOB = 60000  # bytes of one job (a pipe takes 64 KiB without blocking the daemon)
RECENT = 200  # alerts ``corral alerts`` shows from memory (the history keeps them too)
FEATURE = "monitor.alerts"
THRESHOLD_FIELDS = ("metric", "value", "limit", "cleared", "mount", "samples")


def service_of(core: Core) -> AlertService:
    """The core's alert service, started on first use."""
    features: dict[str, Any] = getattr(core, "features", {})
    service = features.get(FEATURE)
    if service is None:
        service = features[FEATURE] = AlertService(core)
    return service


def configure(core: Core, sinks: list[dict[str, Any]]) -> AlertService:
    """Use these sinks (:func:`corral.config.sinks.to_sinks`) from now on."""
    service = service_of(core)
    service.configure(sinks)
    return service


class AlertService:
    def __init__(self, core: Core, sinks: list[dict[str, Any]] | None = None,
                 python: str = sys.executable, deadline: float = DEADLINE) -> None:
        self.core = core
        self.engine = AlertEngine(prefix=f"{int(core.clock.now()):x}.")
        self.sinks: dict[str, dict[str, Any]] = {}
        self.recent: deque[dict[str, Any]] = deque(maxlen=RECENT)
        self.python = python
        self.deadline = deadline
        self.running = 0
        self._slots = asyncio.Semaphore(CONCURRENCY)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._sub = core.subscribe(Event, where=_may_alert, name="alerts")
        self._reader = self._spawn(self._read())
        self.configure(sinks or [])

    def configure(self, sinks: list[dict[str, Any]]) -> None:
        self.sinks = {sink["name"]: sink for sink in sinks}
        self.engine.configure(sinks)

    def close(self) -> None:
        self._sub.close()
        for task in list(self._tasks):
            task.cancel()

    # -- events in ---------------------------------------------------------------------
    async def _read(self) -> None:
        async for event in self._sub:
            self.handle(event)

    def handle(self, event: Event) -> Alert | None:
        """One event from the bus: the alert it raised (None when none); never raises."""
        try:
            data = dict(event.data)
            if event.kind == "threshold":  # the fields themselves, whatever its data shows
                data.update({name: getattr(event, name) for name in THRESHOLD_FIELDS if hasattr(event, name)})
            alert, deliveries = self.engine.on_event(event.kind, event.app, event.instance, event.message,
                                                     data, event.ts, self.core.clock.monotonic())
        except Exception:  # a bug here must not cost the daemon anything else
            log.exception("alerts: cannot judge a %s event of %s", event.kind, event.app or "the host")
            return None
        if alert is not None:
            self._raised(alert, deliveries)
        return alert

    def _raised(self, alert: Alert, deliveries: list[Delivery]) -> None:
        entry = {**alert.to_dict(), "deliveries": {d.sink: d.to_dict() for d in deliveries}}
        self.recent.append(entry)
        log.warning("alert %s (%s): %s", alert.id, alert.severity, alert.title)
        self.core.publish(AlertEvent(app=alert.app, instance=alert.instance, alert=alert.id, alert_kind=alert.kind,
                                     severity=alert.severity, title=alert.title, details=alert.details,
                                     sinks=tuple(d.sink for d in deliveries)))
        for delivery in deliveries:
            self._spawn(self._attempt(delivery))

    # -- deliveries out ----------------------------------------------------------------
    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _attempt(self, delivery: Delivery) -> None:
        sink = self.sinks.get(delivery.sink)
        if sink is None:  # the sink was removed meanwhile
            ok, reason, retry = False, "the sink is no longer configured", False
        else:
            ok, reason, retry = await self.run_delivery(sink, delivery.alert.to_dict(), delivery.suppressed)
        self.engine.result(delivery, ok, reason, self.core.clock.monotonic(), retry=retry)
        self._note(delivery)
        if delivery.retry_at is not None:
            log.info("alert %s: %s failed (%s); retrying", delivery.alert.id, delivery.sink, reason)
            self.core.timers.at(delivery.retry_at, lambda: self._spawn(self._attempt(delivery)))
            return
        if delivery.outcome == "undelivered":
            log.warning("alert %s: undelivered to %s after %d attempt(s): %s", delivery.alert.id, delivery.sink,
                        delivery.attempts, reason)
        self.core.publish(AlertDelivery(app=delivery.alert.app, instance=delivery.alert.instance,
                                        alert=delivery.alert.id, sink=delivery.sink, outcome=delivery.outcome,
                                        attempts=delivery.attempts, reason=reason, suppressed=delivery.suppressed))

    def _note(self, delivery: Delivery) -> None:
        for entry in self.recent:
            if entry["id"] == delivery.alert.id:
                entry["deliveries"][delivery.sink] = delivery.to_dict()

    async def run_delivery(self, sink: dict[str, Any], alert: dict[str, Any], suppressed: int = 0
                           ) -> tuple[bool, str, bool]:
        """One attempt in a subprocess: (delivered, why not, worth retrying)."""
        job = json.dumps({"sink": sink, "alert": alert, "suppressed": suppressed,
                          "timeout": min(NETWORK_TIMEOUT, self.deadline / 2)}).encode()
        if len(job) > MAX_JOB:  # written at once into the pipe: never more than it holds
            job = json.dumps({"sink": sink, "alert": {**alert, "details": {"truncated": True}}, "suppressed": suppressed,
                              "timeout": min(NETWORK_TIMEOUT, self.deadline / 2)}).encode()
        async with self._slots:
            self.running += 1
            try:
                out = await self._run(job)
            finally:
                self.running -= 1
        if out is None:
            return False, f"no answer within {self.deadline:g}s (killed)", True
        try:
            result = json.loads(out.decode(errors="replace").strip().splitlines()[-1])
            return bool(result["ok"]), str(result.get("reason", ""))[:300], bool(result.get("retry", True))
        except (ValueError, KeyError, IndexError, TypeError):
            return False, "the delivery process gave no result", True

    async def _run(self, job: bytes) -> bytes | None:
        """The delivery process's output, or None when it missed the deadline (it is killed)."""
        loop = asyncio.get_running_loop()
        try:
            popen = subprocess.Popen([self.python, "-m", "corral.monitor.deliver"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, close_fds=True,
                                     process_group=0)
        except OSError as exc:
            return json.dumps({"ok": False, "reason": f"cannot start the delivery process: {exc.strerror}"}).encode()
        exited: asyncio.Future[None] = loop.create_future()

        def on_exit(*_: object) -> None:
            if not exited.done():
                exited.set_result(None)

        def reaped(*_: object) -> None:
            loop.call_soon(on_exit)

        if not self.core.watch_child(popen.pid, reaped):
            loop.run_in_executor(None, popen.wait).add_done_callback(lambda _: loop.call_soon_threadsafe(on_exit))
        assert popen.stdin is not None and popen.stdout is not None
        output = _Collect(loop, popen.stdout)
        try:
            popen.stdin.write(job)  # a few KB: the pipe takes it at once
            popen.stdin.close()
        except OSError:
            pass
        try:
            await asyncio.wait_for(asyncio.shield(output.done), self.deadline)
            await asyncio.wait_for(asyncio.shield(exited), self.deadline)
            return output.data()
        except (TimeoutError, asyncio.CancelledError) as exc:
            if not exited.done():
                try:
                    os.killpg(popen.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            if isinstance(exc, asyncio.CancelledError):
                raise
            return None
        finally:
            output.close()
            popen.returncode = 0  # reaped by the daemon's reaper (or the executor): never by Popen

    # -- commands ----------------------------------------------------------------------
    async def test(self) -> list[dict[str, Any]]:
        """``corral alerts test``: a test alert through every sink, once each; per sink the outcome."""
        alert = Alert("test", "", "test alert from corral alerts test", "info", ts=self.core.clock.now())
        deliveries = self.engine.test(alert)
        self._raised(alert, [])  # in the history first; its deliveries are reported below
        results = await asyncio.gather(*(self._once(d) for d in deliveries))
        return list(results)

    async def _once(self, delivery: Delivery) -> dict[str, Any]:
        ok, reason, _ = await self.run_delivery(self.sinks[delivery.sink], delivery.alert.to_dict())
        self.engine.result(delivery, ok, reason, self.core.clock.monotonic(), retry=False)
        self._note(delivery)
        self.core.publish(AlertDelivery(app="", alert=delivery.alert.id, sink=delivery.sink, outcome=delivery.outcome,
                                        attempts=delivery.attempts, reason=reason))
        return {"sink": delivery.sink, "type": self.sinks[delivery.sink]["type"], "outcome": delivery.outcome,
                "reason": reason}

    def status(self) -> dict[str, Any]:
        """What ``corral alerts --json`` adds from memory: sinks, pending deliveries, counted crashes."""
        pending = [d for entry in self.recent for d in entry["deliveries"].values() if d["outcome"] == "pending"]
        return {"sinks": [{"name": s["name"], "type": s["type"], "min_severity": s["min_severity"]}
                          for s in self.sinks.values()],
                "pending": pending, "running": self.running, "gave_up": self.engine.gave_up,
                "counted": [{"app": app, "classification": what, "crashes": n}
                            for (app, what), n in sorted(self.engine.counted.items())],
                "recent": list(self.recent)}


def _may_alert(event: Event) -> bool:
    return event.kind in KINDS and (event.kind != "state" or getattr(event, "new", None) == "errored")


class _Collect:
    """A pipe's bytes, read by the loop until end of file (``done``), at most 64 KiB kept."""

    def __init__(self, loop: asyncio.AbstractEventLoop, pipe: Any) -> None:
        self.loop, self.pipe = loop, pipe
        self.fd = pipe.fileno()
        self.chunks: list[bytes] = []
        self.size = 0
        self.done: asyncio.Future[None] = loop.create_future()
        os.set_blocking(self.fd, False)
        loop.add_reader(self.fd, self._read)

    def _read(self) -> None:
        try:
            chunk = os.read(self.fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if chunk and self.size < 65536:
            self.chunks.append(chunk)
            self.size += len(chunk)
        if not chunk:
            self.loop.remove_reader(self.fd)
            if not self.done.done():
                self.done.set_result(None)

    def data(self) -> bytes:
        return b"".join(self.chunks)

    def close(self) -> None:
        if not self.pipe.closed:
            self.loop.remove_reader(self.fd)
            self.pipe.close()
