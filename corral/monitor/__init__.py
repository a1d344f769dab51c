"""Watching the machine and the apps: sampling (``sampler``), history (``history``), thresholds
(``rules``, pure) and the service on the daemon's timers that ties them (``service``).

A feature: it uses the daemon core (``corral.daemon.core``) and nothing else of the daemon.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from corral.daemon.core import DaemonCore
    from corral.monitor.service import Monitor


def start(core: DaemonCore, state_dir: str | None) -> Monitor:
    """Start monitoring on ``core``: history in ``state_dir``/metrics.db (in memory without one)."""
    import os

    from corral.monitor.history import History
    from corral.monitor.service import Monitor

    try:
        history = History(os.path.join(state_dir, "metrics.db") if state_dir else ":memory:")
    except Exception as exc:  # an unusable file: sampling goes on without a history
        import logging

        logging.getLogger("corral.daemon").warning("metrics.db: no history of samples: %s", exc)
        history = None
    monitor = Monitor(core, history=history)
    monitor.start()
    return monitor


class SweepTimer:
    """The health sweep's timer (``sweep_interval``, 20 min by default); the sweep itself
    (``corral.monitor.sweep``) loads with its first run."""

    def __init__(self, core: DaemonCore) -> None:
        self.core = core
        self.interval = 0.0
        self.handle: object = None
        self.sweeper: object = None
        self.running = False

    def configure(self) -> None:
        interval = float(self.core.settings().get("sweep_interval") or 20 * 60.0)
        if interval != self.interval:
            self.close()
            self.interval = interval
            self.handle = self.core.timers.every(interval, self.fire)

    def close(self) -> None:
        if self.handle is not None:
            self.handle.cancel()  # type: ignore[attr-defined]
            self.handle = None

    def fire(self) -> None:
        import asyncio

        if self.running:  # a sweep still reviving: this one is skipped, never two at once
            return
        from corral.monitor.sweep import Sweeper

        if self.sweeper is None:
            self.sweeper = Sweeper(self.core)
        self.running = True
        task = asyncio.ensure_future(self.sweeper.run(self.interval))  # type: ignore[attr-defined]
        self.core.features["sweep_task"] = task
        task.add_done_callback(self._done)

    def _done(self, task: object) -> None:
        self.running = False
        self.core.features.pop("sweep_task", None)
        if not task.cancelled() and task.exception() is not None:  # type: ignore[attr-defined]
            import logging

            logging.getLogger("corral.daemon").error("sweep failed: %s", task.exception())  # type: ignore[attr-defined]


def start_sweep(core: DaemonCore) -> SweepTimer:
    timer = SweepTimer(core)
    core.features["sweep"] = timer
    core.on_settings(timer.configure)
    timer.configure()
    return timer
