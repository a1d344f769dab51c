"""The core a feature is handed: clock, timers, the event bus, the control operations and a
read-only view.  Features (health, monitor, jobs, profile, deploy) use this and nothing else
of the daemon.

``DaemonCore`` is the daemon's implementation.  It owns the clock, the timers and the bus;
the supervisor attaches itself (for ``view``) and the control context (for ``call``).
"""

from __future__ import annotations

import asyncio
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

from corral.clock import Clock, SystemClock
from corral.control.protocol import Encoded
from corral.daemon.bus import DEFAULT_MAXSIZE, Bus, Subscription
from corral.daemon.timers import Handle, Timers, loop_timers
from corral.events import Event
from corral.exceptions import OperationFailed

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from corral.daemon.bus import Filter
    from corral.daemon.ops.apps import Context
    from corral.daemon.supervisor import Supervisor
    from corral.daemon.view import AppView, InstanceView, Snapshot
    from corral.process.reaper import ExitCallback


def __getattr__(name: str) -> Any:
    """``Snapshot``, ``AppView``, ``InstanceView`` load with the first view (the daemon may never need them)."""
    if name in ("Snapshot", "AppView", "InstanceView"):
        from corral.daemon import view

        return getattr(view, name)
    raise AttributeError(name)


__all__ = ["Core", "DaemonCore", "Snapshot", "AppView", "InstanceView", "Clock", "Timers", "Handle",
           "Subscription", "Event"]


class Core(Protocol):
    clock: Clock
    timers: Timers  # at(when, fn), after(delay, fn), every(interval, fn, jitter=0) -> Handle

    def publish(self, event: Event) -> None: ...

    def subscribe(self, *kinds: type[Event], maxsize: int = DEFAULT_MAXSIZE,
                  where: Filter | None = None, name: str = "") -> Subscription: ...

    async def call(self, op: str, **args: Any) -> Any: ...  # the control socket's operations

    def view(self) -> Snapshot: ...  # read-only apps, instances, pids

    def settings(self) -> Mapping[str, Any]: ...  # the daemon-wide settings (corral.config.host), frozen
    def watch_child(self, pid: int, callback: ExitCallback) -> bool: ...  # a feature's own child exits

    def run_once(self, spec: Mapping[str, Any], base_env: Mapping[str, str],  # a job's run, as an app's
                 on_output: Callable[[str, bytes], None], on_exit: Callable[[int | None, str | None], None],
                 extra_env: Mapping[str, str] | None = None) -> Any: ...


class DaemonCore:
    """Clock, timers and bus for one daemon (or one ``corral run``)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, clock: Clock | None = None,
                 timers: Timers | None = None) -> None:
        self.clock: Clock = clock or SystemClock()
        self.timers: Timers = timers or loop_timers(loop, self.clock)
        self.bus = Bus(self.clock)
        self.supervisor: Supervisor | None = None
        self.context: Context | None = None
        self.state_dir: str | None = None  # where features may keep files (None: in memory only)
        self.features: dict[str, Any] = {}  # name -> the running feature (the monitor ...)
        #: (app, instance) -> the latest sample of it, kept by the monitor (``ls``, ``describe``)
        self.latest: dict[tuple[str, int], dict[str, Any]] = {}
        self._settings: Mapping[str, Any] = MappingProxyType({})
        self._on_settings: list[Callable[[], object]] = []

    def settings(self) -> Mapping[str, Any]:
        """The daemon-wide settings (converted, only those a file gave): a frozen snapshot."""
        return self._settings

    def set_settings(self, settings: dict[str, Any]) -> None:
        """New settings, all of them (a key left out is back at its default); features are told."""
        self._settings = MappingProxyType(dict(settings))
        for fn in list(self._on_settings):
            fn()

    def on_settings(self, fn: Callable[[], object]) -> None:
        self._on_settings.append(fn)

    def publish(self, event: Event) -> None:
        self.bus.publish(event)

    def subscribe(self, *kinds: type[Event], maxsize: int = DEFAULT_MAXSIZE,
                  where: Filter | None = None, name: str = "") -> Subscription:
        return self.bus.subscribe(*kinds, maxsize=maxsize, where=where, name=name)

    async def call(self, op: str, **args: Any) -> Any:
        """Run a control operation as the socket would (``UserError``/``OperationFailed`` raise)."""
        from corral.daemon.ops.apps import handler_for

        from corral.control.ops import OPS, check_request

        handler = handler_for(op) if op in OPS else None
        if handler is None or self.context is None:
            raise LookupError(f"no operation {op!r}" if handler is None else "no control context attached")
        check_request(op, args)  # BadArgs (a UserMistake), as the socket would refuse them
        result = await handler(self.context, args)
        if isinstance(result, Encoded):  # already JSON for the socket: callers here get objects
            import json

            return json.loads(result)
        return result

    def view(self) -> Snapshot:
        from corral.daemon.view import snapshot

        return snapshot(self.supervisor, self.clock.now())

    def run_once(self, spec: Mapping[str, Any], base_env: Mapping[str, str],
                 on_output: Callable[[str, bytes], None], on_exit: Callable[[int | None, str | None], None],
                 extra_env: Mapping[str, str] | None = None) -> Any:
        """Run ``spec`` (an app spec's dict) once, as an instance of it would run (argv, environment,
        identity, limits, log files): a handle with ``pid`` and ``stop(sig=None)``.  ``on_output``
        gets each chunk of lines (redacted), ``on_exit(code, signal)`` comes once its output is read.
        OperationFailed (one line) when it cannot start (``corral.daemon.oneshot``)."""
        from corral.config.spec import AppSpec
        from corral.daemon import oneshot

        if self.supervisor is None:
            raise OperationFailed("no supervisor attached: nothing can run")
        try:
            checked = AppSpec.from_dict(spec)
        except ValueError as exc:
            raise OperationFailed(f"not a runnable spec: {exc}") from None
        return oneshot.run(self.supervisor, checked, dict(base_env), on_output, on_exit, dict(extra_env or {}))

    def watch_child(self, pid: int, callback: ExitCallback) -> bool:
        """The exit of a child a feature started (an alert delivery) goes to ``callback(pid, code,
        signal)``: the daemon's one reaper sees every exit, so a feature must not wait for its
        children itself.  False when no supervisor reaps here (the caller then waits itself)."""
        if self.supervisor is None:
            return False
        self.supervisor.reaper.watch(pid, callback)
        return True
