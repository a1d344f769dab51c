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
