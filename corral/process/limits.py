"""Resource limits: the daemon's own, and each app's (``limits = { nofile = 65536, core = 0 }``).

The daemon raises its soft ``RLIMIT_NOFILE`` to the hard limit when it starts (one app costs it
four descriptors or so: 1024 stopped 300 apps at 252), and sets its soft ``RLIMIT_CORE`` to 0,
so neither it nor any app writes a core dump (secrets in memory never reach the disk) unless an
app opts in.  Apps inherit the daemon's limits; an app's ``limits`` are set in the child before
its program runs, by the exec shim (``setrlimit``, then ``exec``): never after the program has
started, and nothing runs between fork and exec in the daemon's child.

:func:`plan` (pure) decides which limits a spawn must set and refuses what cannot be set.
"""

from __future__ import annotations

import resource
from typing import Iterable

INFINITY = resource.RLIM_INFINITY

Pair = tuple[int, int]  # (soft, hard); RLIM_INFINITY for unlimited


def rlimit(name: str) -> int:
    """The RLIMIT_ constant of a limit's name (the names of ``corral.config.limits.RLIMITS``)."""
    return int(getattr(resource, "RLIMIT_" + name.upper()))


def prepare_daemon() -> dict[str, Pair]:
    """At daemon start: soft nofile up to the hard limit, soft core to 0.  Returns what it found."""
    found = {}
    for name, soft in (("nofile", None), ("core", 0)):
        which = rlimit(name)
        old_soft, hard = resource.getrlimit(which)
        found[name] = (old_soft, hard)
        try:
            resource.setrlimit(which, (hard if soft is None else soft, hard))
        except (ValueError, OSError):  # a hard nofile above what the kernel allows: keep the old one
            pass
    return found


def _value(limit: int | None) -> int:
    return INFINITY if limit is None else limit


def _show(limit: int) -> str:
    return "unlimited" if limit == INFINITY else str(limit)


def _above(a: int, b: int) -> bool:
    """a > b, with RLIM_INFINITY the largest value."""
    return a != b and (a == INFINITY or (b != INFINITY and a > b))


def plan(requested: dict[str, list[int | None]], inherited: dict[str, Pair], root: bool) -> list[tuple[str, int, int]]:
    """What to set in the child: each requested (soft, hard) that differs from what it would
    inherit.  Raises ValueError (one line) for a hard limit above the inherited one when the daemon
    is not root (only root may raise a hard limit)."""
    out = []
    for name in sorted(requested):
        soft, hard = (_value(v) for v in requested[name])
        if (soft, hard) == inherited[name]:
            continue
        current_hard = inherited[name][1]
        if _above(hard, current_hard) and not root:
            raise ValueError(f"limits: {name}: {_show(hard)} is above the hard limit {_show(current_hard)} "
                             f"(raise it where the daemon starts, or run the daemon as root)")
        out.append((name, soft, hard))
    return out


def current(names: Iterable[str]) -> dict[str, Pair]:
    return {name: resource.getrlimit(rlimit(name)) for name in names}


def allow_hard(settings: list[tuple[str, int, int]], inherited: dict[str, Pair]) -> None:
    """Root: raise the daemon's own hard limits to what the child needs, so the child (maybe
    already another user when the shim runs) can set them.  Raises ValueError if the kernel refuses."""
    for name, _, hard in settings:
        soft, current_hard = inherited[name]
        if _above(hard, current_hard):
            try:
                resource.setrlimit(rlimit(name), (soft, hard))
            except (ValueError, OSError) as exc:
                raise ValueError(f"limits: {name}: cannot raise the hard limit to {_show(hard)} ({exc})") from None


def shim_options(settings: list[tuple[str, int, int]]) -> list[str]:
    """The exec shim's arguments for these limits (``--rlimit nofile=65536:65536``; -1: unlimited)."""
    out = []
    for name, soft, hard in settings:
        out += ["--rlimit", f"{name}={-1 if soft == INFINITY else soft}:{-1 if hard == INFINITY else hard}"]
    return out


def for_spawn(requested: dict[str, list[int | None]]) -> list[str]:
    """The shim options for an app's ``limits`` ([] when it inherits everything it asks for).
    Raises SpawnError with a one-line reason when a limit cannot be set."""
    if not requested:
        return []
    import os

    from corral.process.spawner import SpawnError

    inherited = current(requested)
    try:
        settings = plan(requested, inherited, os.geteuid() == 0)
        allow_hard(settings, inherited)
    except ValueError as exc:
        raise SpawnError(str(exc)) from None
    return shim_options(settings)


# -- the tracer (the shim's --ptracer) -------------------------------------------------------
# Whether apps must name the daemon as their tracer (``PR_SET_PTRACER``) so that the profiler it
# starts may read them: only under Yama's ``ptrace_scope = 1`` (descendants only) and when the
# daemon lacks CAP_SYS_PTRACE (root has it and may trace anyway; scopes 2 and 3 ignore the call).
# Here, not in a module of its own: the daemon loads this one anyway.  Read once per daemon.
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
