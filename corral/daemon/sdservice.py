"""The daemon as a systemd ``Type=notify`` service (``corral startup``): loaded only when the
daemon was started with a ``NOTIFY_SOCKET`` in its environment, so a daemon the CLI starts never
imports it.

* ``READY=1`` once the control socket answers and the saved apps are restored (the unit runs the
  daemon with ``--resurrect``: ``dump.json``'s apps start at boot);
* ``WATCHDOG=1`` every half ``WATCHDOG_USEC`` from the event loop itself, so a wedged loop stops
  the pings and systemd restarts the daemon (``WatchdogSec=``);
* ``STOPPING=1`` and ``EXTEND_TIMEOUT_USEC`` when the unit stops: the time the graceful stop of
  every app may take (their kill_timeouts, dependents first), so systemd waits for it even when
  the unit's ``TimeoutStopSec`` was written before a slower app was added.

The variables are taken out of the daemon's environment (:func:`take`), so no app inherits them.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import MutableMapping

from corral.process.sdnotify import send

log = logging.getLogger("corral.daemon")
VARIABLES = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


def take(environ: MutableMapping[str, str]) -> dict[str, str]:
    """systemd's variables, removed from ENVIRON (apps must not send to our manager)."""
    return {name: environ.pop(name) for name in VARIABLES if name in environ}


def watchdog_interval(found: dict[str, str], pid: int) -> float | None:
    """Seconds between two ``WATCHDOG=1`` (half the manager's timeout), or None: no watchdog,
    a malformed value, or one meant for another process (``WATCHDOG_PID``)."""
    try:
        usec = int(found.get("WATCHDOG_USEC", ""))
        for_pid = int(found.get("WATCHDOG_PID", str(pid)))
    except ValueError:
        return None
    return usec / 2e6 if usec > 0 and for_pid == pid else None


class Manager:
    """Our service manager, reached through its NOTIFY_SOCKET."""

    def __init__(self, loop: asyncio.AbstractEventLoop, found: dict[str, str]) -> None:
        self._loop = loop
        self.path = found["NOTIFY_SOCKET"]
        self._interval = watchdog_interval(found, os.getpid())
        self._timer: asyncio.TimerHandle | None = None

    def notify(self, message: str) -> None:
        if not send(self.path, message):
            log.warning("cannot reach the service manager's NOTIFY_SOCKET %s", self.path)

    def ready(self, restored: int) -> None:
        self.notify(f"READY=1\nSTATUS=corral daemon ready ({restored} apps restored)")
        if self._interval is not None:
            log.info("watchdog: pinging systemd every %.1fs", self._interval)
            self._ping()

    def _ping(self) -> None:
        send(self.path, "WATCHDOG=1")
        self._timer = self._loop.call_later(self._interval or 1.0, self._ping)

    def stopping(self, budget: float) -> None:
        """Stopping the apps may take BUDGET seconds: systemd waits that long before it kills."""
        self.notify(f"STOPPING=1\nSTATUS=stopping every app\nEXTEND_TIMEOUT_USEC={int(budget * 1e6)}")

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
