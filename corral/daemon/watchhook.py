"""Loads watch and restart (:mod:`corral.daemon.watching`) at the first app that has ``watch``.

A bus listener on the events that add, change or remove an app; it looks at the apps on the next
turn of the loop (``AppChanged`` is published before the new spec is in place).  Until an app
watches, this is all a daemon carries of the feature.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from corral import events as ev

if TYPE_CHECKING:
    from corral.daemon.supervisor import Supervisor


def install(sup: Supervisor) -> Any:
    """Listen on ``sup``'s bus; returns a function that stops the watching (daemon exit)."""
    held: list[Any] = []  # the Watching, once loaded
    closed: list[bool] = []

    def look() -> None:
        if closed:
            return
        if held:
            held[0].poke()
        elif any(app.spec.watch for app in sup.apps.values()):
            from corral.daemon.watching import Watching

            held.append(Watching(sup))
            held[0].poke()

    def on_event(event: ev.Event) -> None:
        sup.loop.call_soon(look)

    sup.bus.listen(on_event, ev.AppAdded, ev.AppChanged, ev.AppRemoved)

    def close() -> None:
        closed.append(True)  # for good: nothing is watched again (the daemon or corral run is ending)
        if held:
            held[0].close()

    return close
