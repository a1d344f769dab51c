"""Restart decisions, pure: whether an exit is restarted, after how long, and when to give up.

No IO and no clock: callers pass uptimes in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

BACKOFF_CAP = 15.0
CRASH_LOOP_THRESHOLD = 10


@dataclass(frozen=True, kw_only=True)
class Policy:
    """The part of an app's settings that the lifecycle needs.

    The settings have no defaults here: they come from the app's spec
    (``corral.config.policies.restart_policy``), whose defaults are declared once, in
    ``corral.config.fields``.
    """

    autorestart: str  # always | on-failure | never
    min_uptime: float
    max_restarts: int | None
    restart_delay: float
    backoff_base: float
    kill_timeout: float
    stop_signal: str
    stop_exit_codes: frozenset[int]
    ready_mode: str  # auto | delay | notify | probe
    ready_delay: float  # listen_timeout, for the "delay" mode
    ready_timeout: float  # notify/probe: not ready by then = failed start
    watchdog: float | None
    backoff_cap: float = BACKOFF_CAP
    crash_loop_threshold: int = CRASH_LOOP_THRESHOLD

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

