"""Whether this process may trace another (ptrace), and, when not, the one line that says why
and how to fix it.  :func:`diagnose` is PURE; :func:`facts` reads them from /proc (in the helper).

py-spy reads the target's memory with ptrace.  Linux allows it to root (CAP_SYS_PTRACE), and to
the same user subject to Yama's ``kernel.yama.ptrace_scope``: 0 any process of the user, 1 only
descendants (and processes that named the tracer with ``PR_SET_PTRACER``: corral's exec shim
names the daemon, whose child the helper is), 2 only CAP_SYS_PTRACE, 3 nobody.
"""

from __future__ import annotations

import os
from typing import Any

CAP_SYS_PTRACE = 19
DENIED = ("permission denied", "operation not permitted", "eperm", "elevated permissions")


def facts() -> dict[str, Any]:
    """Yama's scope (None without Yama), whether we hold CAP_SYS_PTRACE, whether we are in a container."""
    scope = None
    try:
        with open("/proc/sys/kernel/yama/ptrace_scope", encoding="ascii") as f:
            scope = int(f.read().strip())
    except (OSError, ValueError):
        pass
    cap = False
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    cap = bool(int(line.split()[1], 16) >> CAP_SYS_PTRACE & 1)
    except (OSError, ValueError):
        pass
    container = os.path.exists("/.dockerenv") or os.path.exists("/run/.containerenv") or \
        bool(os.environ.get("KUBERNETES_SERVICE_HOST"))
    return {"scope": scope, "cap": cap, "container": container}


def denied(error: str) -> bool:
    return any(word in error.lower() for word in DENIED)


def diagnose(pid: int, error: str, scope: int | None, cap: bool, container: bool) -> str:
    """PURE: one line for a tracer's ERROR on PID: the cause and the fix when it is a lack of rights."""
    if not denied(error):
        return f"cannot trace pid {pid}: {error}"
    if scope == 3:
        return (f"cannot trace pid {pid}: kernel.yama.ptrace_scope is 3 (no tracing at all until reboot); "
                "set it to 1 at boot (sysctl.d) to profile apps")
    if not cap and (scope == 2 or container):
        where = ("run the container with --cap-add SYS_PTRACE (Kubernetes: securityContext.capabilities.add: "
                 "[SYS_PTRACE])") if container else "run the daemon as root, or set kernel.yama.ptrace_scope to 1"
        return f"cannot trace pid {pid}: no CAP_SYS_PTRACE; {where}"
    if scope == 1:
        return (f"cannot trace pid {pid}: kernel.yama.ptrace_scope is 1 and the app did not allow the daemon "
                "(started before this corral version? restart it: `corral restart NAME`)")
    return f"cannot trace pid {pid}: {error} (another user's process? run the daemon as that user or as root)"
