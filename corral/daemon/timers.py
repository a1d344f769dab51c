"""The timer service: every timer of the daemon runs here, on the injected clock.

``at(when, fn)`` (``when`` on the clock's monotonic scale), ``after(delay, fn)`` and
``every(interval, fn, jitter=0)`` return a :class:`Handle`; ``handle.cancel()`` stops it.
The daemon's service schedules on the asyncio loop (one ``call_later`` per pending call);
the test service (:func:`manual_timers`) on a :class:`~corral.clock.ManualClock`, so
lifecycle timers, kill escalation, group polling and probe intervals run in tests
without sleeping.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from corral.clock import SystemClock

if TYPE_CHECKING:  # types only: each typing object costs the daemon memory
    import asyncio
    from typing import Callable, Protocol

    from corral.clock import Clock, ManualClock

    Callback = Callable[[], object]

    class Cancellable(Protocol):
        def cancel(self) -> None: ...

    Schedule = Callable[[float, Callback], Cancellable]  # (monotonic deadline, fn) -> something to cancel


class Handle:
    """A pending timer (one-shot or repeating)."""

    __slots__ = ("_pending", "cancelled")

    def __init__(self) -> None:
        self._pending: Cancellable | None = None
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None


class Timers:
    """One-shot and repeating timers on a clock and a way to schedule a call at a deadline."""

    def __init__(self, clock: Clock, schedule: Schedule, rand: Callable[[], float] | None = None) -> None:
        self.clock = clock
        self._schedule = schedule
        self._rand = rand

    def at(self, when: float, fn: Callback) -> Handle:
        """Call ``fn`` once, at ``when`` on the clock's monotonic scale."""
        handle = Handle()

        def fire() -> None:
            handle._pending = None
            if not handle.cancelled:
                handle.cancelled = True  # spent: a late cancel() is harmless
                fn()

        handle._pending = self._schedule(when, fire)
        return handle

    def after(self, delay: float, fn: Callback) -> Handle:
        """Call ``fn`` once, ``delay`` seconds from now."""
        return self.at(self.clock.monotonic() + max(0.0, delay), fn)

    def every(self, interval: float, fn: Callback, jitter: float = 0.0) -> Handle:
        """Call ``fn`` every ``interval`` seconds, the first time one interval from now.

        Each call comes up to ``jitter`` seconds after its slot (a random share of it), and
        the slots stay ``interval`` apart, so jitter never accumulates into drift.  A slot
        missed (the loop was busy past it) is skipped rather than run twice in a row.
        """
        if interval <= 0:
            raise ValueError(f"every() needs an interval above 0, not {interval}")
        handle = Handle()
        rand = self._random() if jitter > 0 else None
        slot = self.clock.monotonic()

        def arm() -> None:
            nonlocal slot
            slot += interval
            now = self.clock.monotonic()
            if slot < now - interval:
                slot = now  # behind by more than a period: start again from now
            delay = rand() * jitter if rand is not None else 0.0
            handle._pending = self._schedule(slot + delay, fire)

        def fire() -> None:
            if handle.cancelled:
                return
            arm()  # first, so a failing fn keeps its schedule
            fn()

        arm()
        return handle

    def _random(self) -> Callable[[], float]:
        if self._rand is None:
            import random  # only for jittered timers: the daemon may never need it

            self._rand = random.random
        return self._rand


def loop_timers(loop: asyncio.AbstractEventLoop, clock: Clock | None = None) -> Timers:
    """The daemon's timers: deadlines on ``clock`` (default the system clock), run by ``loop``."""
    clock = clock or SystemClock()

    def schedule(when: float, fn: Callback) -> Cancellable:
        return loop.call_later(max(0.0, when - clock.monotonic()), fn)

    return Timers(clock, schedule)


def manual_timers(clock: ManualClock, rand: Callable[[], float] | None = None) -> Timers:
    """Timers for tests: they run when ``clock.advance()`` passes their deadline."""
    return Timers(clock, clock.call_at, rand)
