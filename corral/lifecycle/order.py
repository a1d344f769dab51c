"""Start and stop order from ``depends_on``, pure: layers of app names (``graphlib``).

An app starts only once everything it depends on is ready, and stops before
anything it depends on.  Dependencies outside the given set are already
running (start) or are not being stopped (stop); an app naming itself is ignored.
"""

from __future__ import annotations

import graphlib

from corral.exceptions import UserMistake


class CycleError(UserMistake):
    """``depends_on`` forms a cycle; the message names the apps in it, in order."""

    def __init__(self, cycle: list[str]) -> None:
        super().__init__(f"depends_on forms a cycle: {' -> '.join(cycle)}")
        self.cycle = cycle


def _cycle(found: list[str]) -> list[str]:
    """graphlib's cycle (each node a dependency of the next, first == last) as "a depends on b
    depends on ... a", starting at the smallest name so the message does not depend on dict order."""
    ring = list(reversed(found[1:]))
    start = ring.index(min(ring))
    ring = ring[start:] + ring[:start]
    return ring + ring[:1]


def start_layers(deps: dict[str, list[str]]) -> list[list[str]]:
    """Layers to start in order; every app comes after the apps it depends on (within the set)."""
    graph = {name: {d for d in wanted if d in deps and d != name} for name, wanted in deps.items()}
    sorter = graphlib.TopologicalSorter(graph)
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        raise CycleError(_cycle(exc.args[1])) from None
    layers: list[list[str]] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready())
        layers.append(ready)
        sorter.done(*ready)
    return layers


def stop_layers(deps: dict[str, list[str]]) -> list[list[str]]:
    """Layers to stop in order: dependents before their dependencies."""
    return list(reversed(start_layers(deps)))


#: what the daemon's ordered stop adds to each layer's slowest kill_timeout (``ops.ordering``)
STOP_MARGIN = 10.0


def stop_budget(apps: list[tuple[str, float, list[str]]], margin: float = STOP_MARGIN) -> float:
    """Seconds a graceful stop of APPS (name, kill_timeout, depends_on) may take: layer after
    layer (dependents first), each waiting for its slowest app plus MARGIN; plus MARGIN to exit.
    A cycle stops everything at once, as the daemon does."""
    timeouts = {name: kill_timeout for name, kill_timeout, _ in apps}
    deps = {name: list(depends) for name, _, depends in apps}
    try:
        layers = stop_layers(deps) if any(deps.values()) else [sorted(deps)]
    except CycleError:
        layers = [sorted(deps)]
    return sum(max(timeouts[n] for n in layer) + margin for layer in layers if layer) + margin
