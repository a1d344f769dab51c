"""Start and stop order from ``depends_on``, pure: layers of app names.

An app starts only once everything it depends on is ready, and stops before
anything it depends on.  Dependencies outside the given set are already
running (start) or are not being stopped (stop).
"""

from __future__ import annotations

from corral.exceptions import UserMistake


class CycleError(UserMistake):
    """``depends_on`` forms a cycle; the message names the apps in it, in order."""


def start_layers(deps: dict[str, list[str]]) -> list[list[str]]:
    """Layers to start in order; every app comes after the apps it depends on (within the set)."""
    remaining = {name: {d for d in wanted if d in deps and d != name} for name, wanted in deps.items()}
    layers: list[list[str]] = []
    while remaining:
        ready = sorted(name for name, wanted in remaining.items() if not wanted)
        if not ready:
            cycle = " -> ".join(sorted(remaining))
            raise CycleError(f"depends_on forms a cycle among: {cycle}")
        layers.append(ready)
        for name in ready:
            del remaining[name]
        for wanted in remaining.values():
            wanted.difference_update(ready)
    return layers


def stop_layers(deps: dict[str, list[str]]) -> list[list[str]]:
    """Layers to stop in order: dependents before their dependencies."""
    return list(reversed(start_layers(deps)))
