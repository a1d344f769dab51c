"""One mutation per app at a time: a reload, scale, restart or changed start holds its apps.

A second one is refused with one clear line (``lifecycle.app.busy_message``),
before anything is touched; a stop or delete is never refused (the rollout in
progress sees the app stopped and ends).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from corral.daemon.supervisor import App, Supervisor
from corral.exceptions import OperationFailed
from corral.lifecycle import app as am


class Hold:
    """The apps one operation holds; released when the operation ends, however it ends."""

    def __init__(self, sup: Supervisor, kind: str) -> None:
        self.sup = sup
        self.kind = kind
        self.apps: list[App] = []

    def check(self, apps: list[App]) -> None:
        """Refuse the whole operation if any of APPS is held by another one."""
        now = self.sup.clock.monotonic()
        for app in apps:
            if app in self.apps:
                continue
            _, busy = am.begin(app.state, self.kind, now)
            if busy is not None:
                raise OperationFailed(am.busy_message(app.name, busy))

    def take(self, apps: list[App]) -> None:
        self.check(apps)
        now = self.sup.clock.monotonic()
        for app in apps:
            if app not in self.apps:
                app.state, _ = am.begin(app.state, self.kind, now)
                self.apps.append(app)

    def release(self) -> None:
        for app in self.apps:
            app.state = am.end(app.state)
        self.apps.clear()


@contextmanager
def holding(sup: Supervisor, kind: str, apps: list[App] | None = None) -> Iterator[Hold]:
    hold = Hold(sup, kind)
    if apps:
        hold.take(apps)
    try:
        yield hold
    finally:
        hold.release()
