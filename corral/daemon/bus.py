"""The event bus: in-process publish, subscribe by event type.

Two kinds of receivers:

- **listeners** (:meth:`Bus.listen`) are called inside ``publish``, in order, and never
  miss an event: the store (the only writer of the history) and ``corral run``'s console.
  They must be quick and must not block.
- **subscriptions** (:meth:`Bus.subscribe`) each get a bounded queue, read at their own
  pace (``corral events --follow``, later the web stream and the TUI).  When a queue is
  full the new event is dropped for that subscriber and counted, per subscription and in
  the bus's total; a slow reader never stalls the loop nor grows the daemon's memory.

``publish`` stamps an event whose ``ts`` is 0 with the clock's wall time (in place: an
event is published once, by whoever made it).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING, Any

from corral.clock import SystemClock
from corral.events import Event

if TYPE_CHECKING:  # types only: each typing object costs the daemon memory
    from typing import Callable

    from corral.clock import Clock

    Listener = Callable[[Event], None]
    Filter = Callable[[Event], bool]

log = logging.getLogger("corral.daemon")

DEFAULT_MAXSIZE = 1000


class Subscription:
    """The events of some types (all when none are named) that pass ``where``, queued."""

    def __init__(self, bus: Bus, number: int, kinds: tuple[type[Event], ...], maxsize: int,
                 where: Filter | None, name: str = "") -> None:
        if maxsize < 1:
            raise ValueError(f"a subscription needs room for at least one event, not {maxsize}")
        self.number = number
        self.name = name  # a daemon feature's ("alerts"); "" for a client's (events --follow)
        self.kinds = kinds or (Event,)
        self.maxsize = maxsize
        self.dropped = 0
        self.closed = False
        self._bus = bus
        self._where = where
        self._queue: deque[Event] = deque()
        self._waiter: asyncio.Future[None] | None = None

    def wants(self, event: Event) -> bool:
        return isinstance(event, self.kinds) and (self._where is None or self._where(event))

    def offer(self, event: Event) -> bool:
        """Queue ``event``; False (and counted as dropped) when the queue is full."""
        if len(self._queue) >= self.maxsize:
            self.dropped += 1
            self._bus.dropped += 1
            return False
        self._queue.append(event)
        self._wake()
        return True

    def pending(self) -> int:
        return len(self._queue)

    def get_nowait(self) -> Event | None:
        return self._queue.popleft() if self._queue else None

    def take(self) -> list[Event]:
        """Every queued event, oldest first."""
        out = list(self._queue)
        self._queue.clear()
        return out

    async def wait(self) -> None:
        """Until an event is queued or the subscription is closed."""
        while not self._queue and not self.closed:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    async def get(self) -> Event:
        """The next event; raises ``EOFError`` once closed and empty."""
        await self.wait()
        event = self.get_nowait()
        if event is None:
            raise EOFError("subscription closed")
        return event

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        try:
            return await self.get()
        except EOFError:
            raise StopAsyncIteration from None

    def close(self) -> None:
        """Stop receiving; queued events are still readable.  Safe to call twice."""
        if not self.closed:
            self.closed = True
            self._bus._remove(self)
            self._wake()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def stats(self) -> dict[str, Any]:
        out = {"id": self.number, "kinds": [k.__name__ for k in self.kinds], "queued": len(self._queue),
               "maxsize": self.maxsize, "dropped": self.dropped}
        if self.name:
            out["name"] = self.name
        return out


class Bus:
    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock or SystemClock()
        self.dropped = 0  # events dropped for slow subscribers, since the daemon started
        self.published = 0
        self._listeners: list[tuple[Listener, tuple[type[Event], ...], bool]] = []
        self._subscriptions: list[Subscription] = []
        self._numbers = 0
        self._wanted: dict[type[Event], bool] = {}

    def publish(self, event: Event) -> Event:
        """Hand ``event`` to every listener, then queue it for every subscription that wants it.
        Returns the event (stamped with a timestamp)."""
        if not event.ts:  # stamped in place: nobody else holds the event yet (a copy costs memory)
            object.__setattr__(event, "ts", self.clock.now())
        self.published += 1
        for listener, kinds, stored_only in self._listeners:
            if isinstance(event, kinds) and (event.stored or not stored_only):
                try:
                    listener(event)
                except Exception:  # one broken listener must not cost the others their events
                    log.exception("event listener %r failed on %s", listener, event.kind)
        for sub in self._subscriptions:
            if sub.wants(event):
                sub.offer(event)
        return event

    def listen(self, fn: Listener, *kinds: type[Event], stored_only: bool = False) -> Callable[[], None]:
        """Call ``fn(event)`` inside every ``publish`` of these types (all when none); with
        ``stored_only``, only for events the history keeps.  Returns a function that stops it."""
        entry = (fn, kinds or (Event,), stored_only)
        self._listeners.append(entry)
        self._wanted.clear()

        def stop() -> None:
            if entry in self._listeners:
                self._listeners.remove(entry)
                self._wanted.clear()

        return stop

    def wants(self, cls: type[Event]) -> bool:
        """Whether anyone would receive an event of this type: publishers may skip building
        live-only events (state changes, probe results) that nobody listens to."""
        wanted = self._wanted.get(cls)
        if wanted is None:
            wanted = any(issubclass(cls, s.kinds) for s in self._subscriptions) or any(
                issubclass(cls, kinds) and (cls.STORED or not stored_only) for _, kinds, stored_only in self._listeners)
            self._wanted[cls] = wanted
        return wanted

    def subscribe(self, *kinds: type[Event], maxsize: int = DEFAULT_MAXSIZE,
                  where: Filter | None = None, name: str = "") -> Subscription:
        """A bounded queue of the events of these types (all when none) for which ``where``
        holds; close it (or use it as a context manager) when done.  ``name``: a daemon
        feature's subscription says whose it is (``ping --json``)."""
        self._numbers += 1
        sub = Subscription(self, self._numbers, kinds, maxsize, where, name)
        self._subscriptions.append(sub)
        self._wanted.clear()
        return sub

    def _remove(self, sub: Subscription) -> None:
        if sub in self._subscriptions:
            self._subscriptions.remove(sub)
            self._wanted.clear()

    @property
    def subscriptions(self) -> list[Subscription]:
        return list(self._subscriptions)

    def stats(self) -> dict[str, Any]:
        """For ``ping --json`` and ``describe``: drops in total and per live subscription."""
        return {"published": self.published, "dropped": self.dropped,
                "subscribers": [s.stats() for s in self._subscriptions]}
