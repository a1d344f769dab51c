"""Whether apps must name the daemon as their tracer (``PR_SET_PTRACER``) so that the profiler it
starts may read them: only under Yama's ``ptrace_scope = 1`` (descendants only) and when the
daemon lacks CAP_SYS_PTRACE (root has it and may trace anyway; scopes 2 and 3 ignore the call).
Read once per daemon: two small /proc reads.
"""

from __future__ import annotations

CAP_SYS_PTRACE = 19
_needed: bool | None = None


def needs_ptracer(scope: int | None, has_cap: bool) -> bool:
    """PURE: whether an app's exec shim should call ``prctl(PR_SET_PTRACER, daemon)``."""
    return scope == 1 and not has_cap


def _read_scope() -> int | None:
    try:
        with open("/proc/sys/kernel/yama/ptrace_scope", encoding="ascii") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None  # no Yama: same-user tracing is allowed


def _has_cap() -> bool:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> CAP_SYS_PTRACE & 1)
    except (OSError, ValueError):
        pass
    return False


def ptracer_needed() -> bool:
    """For this daemon (cached): whether apps must be started through the shim's ``--ptracer``."""
    global _needed
    if _needed is None:
        _needed = needs_ptracer(_read_scope(), _has_cap())
    return _needed
