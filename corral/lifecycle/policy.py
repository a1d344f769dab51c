"""Restart decisions, pure: whether an exit is restarted, after how long, and when to give up.

No IO and no clock: callers pass uptimes in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

BACKOFF_CAP = 15.0
CRASH_LOOP_THRESHOLD = 10


@dataclass(frozen=True)
class Policy:
    """The part of an app's spec that the lifecycle needs."""

    autorestart: str = "always"  # always | on-failure | never
    min_uptime: float = 1.0
    max_restarts: int | None = None
    restart_delay: float = 0.0
    backoff_base: float = 0.1
    backoff_cap: float = BACKOFF_CAP
    kill_timeout: float = 5.0
    stop_signal: str = "SIGTERM"
    stop_exit_codes: frozenset[int] = field(default_factory=frozenset)
    crash_loop_threshold: int = CRASH_LOOP_THRESHOLD
    ready_mode: str = "auto"  # auto | delay | notify | probe
    ready_delay: float = 3.0  # listen_timeout, for the "delay" mode
    ready_timeout: float = 30.0  # notify/probe: not ready by then = failed start
    watchdog: float | None = None

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> "Policy":
        return cls(
            ready_mode=ready_mode(spec),
            ready_delay=float(spec.get("listen_timeout", 3.0)),
            ready_timeout=float(spec.get("ready_timeout", 30.0)),
            watchdog=spec.get("watchdog"),
            autorestart=spec.get("autorestart", "always"),
            min_uptime=float(spec.get("min_uptime", 1.0)),
            max_restarts=spec.get("max_restarts"),
            restart_delay=float(spec.get("restart_delay", 0.0)),
            backoff_base=float(spec.get("exp_backoff_restart_delay", 0.1)),
            kill_timeout=float(spec.get("kill_timeout", 5.0)),
            stop_signal=spec.get("stop_signal", "SIGTERM"),
            stop_exit_codes=frozenset(spec.get("stop_exit_codes") or ()),
        )

    def ready_wait(self) -> float:
        """How long a new instance may take to become ready (auto/delay: ``listen_timeout``)."""
        return self.ready_delay if self.ready_mode in ("auto", "delay") else self.ready_timeout

    def is_clean(self, code: int | None, signal: str | None) -> bool:
        """A clean exit: code 0 or one of ``stop_exit_codes``, not killed by a signal."""
        return signal is None and (code == 0 or code in self.stop_exit_codes)

    def wants_restart(self, code: int | None, signal: str | None) -> bool:
        if self.autorestart == "never":
            return False
        if self.autorestart == "on-failure":
            return not self.is_clean(code, signal)
        return not (signal is None and code in self.stop_exit_codes)

    def gives_up(self, fast_failures: int) -> bool:
        """``max_restarts`` counts consecutive unstable runs, as PM2's does."""
        return self.max_restarts is not None and fast_failures > self.max_restarts

    def delay(self, fast_failures: int) -> float:
        """Seconds to wait before the next start.

        The first restart is immediate; each further consecutive fast failure
        doubles the wait, from ``backoff_base`` up to ``backoff_cap``.
        ``restart_delay`` is added to every restart.
        """
        if fast_failures <= 1:
            backoff = 0.0
        else:
            backoff = min(self.backoff_cap, self.backoff_base * 2 ** (fast_failures - 2))
        return self.restart_delay + backoff


def ready_mode(spec: dict[str, Any]) -> str:
    """READY=1 when asked for (``ready = "notify"``, PM2's ``wait_ready``), else a probe,
    else ``listen_timeout`` for apps with shared sockets ("delay"); any other app is online at
    once and ready when one of its processes listens on TCP, or after ``listen_timeout`` ("auto")."""
    ready = spec.get("ready")
    if spec.get("wait_ready") or (ready and ready.get("kind") == "notify"):
        return "notify"
    if ready:
        return "probe"
    return "delay" if spec.get("listen") else "auto"
