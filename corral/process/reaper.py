"""The one place child exits are observed: SIGCHLD, then ``waitid(WNOWAIT)`` to peek.

No thread per child and no blind ``waitpid(-1)``: each exited child is first
peeked without reaping; a pid someone watches is reaped and its status handed
to that watcher, any other pid (an orphaned grandchild re-parented to us as
PID 1 or as a child subreaper) is simply reaped so no zombie is left.
"""

from __future__ import annotations

import os
import signal
from typing import Callable

ExitCallback = Callable[[int, "int | None", "str | None"], None]

PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    """Orphaned descendants are re-parented to us, so we can reap them and see them.

    The setting survives exec: the CLI sets it in the daemon's child before exec
    (CORRAL_SUBREAPER=1 tells the daemon), which keeps ctypes out of the daemon.
    """
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def decode_status(status: int) -> tuple[int | None, str | None]:
    """(exit code, None) or (None, signal name) from a wait status."""
    if os.WIFSIGNALED(status):
        return None, signal_name(os.WTERMSIG(status))
    return os.WEXITSTATUS(status), None


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"SIG{number}"


class Reaper:
    def __init__(self) -> None:
        self._watched: dict[int, ExitCallback] = {}
        self.orphans_reaped = 0

    def watch(self, pid: int, callback: ExitCallback) -> None:
        self._watched[pid] = callback

    def unwatch(self, pid: int) -> None:
        self._watched.pop(pid, None)

    def reap(self) -> None:
        """Reap every exited child; call watchers.  Run it on SIGCHLD."""
        while True:
            try:
                info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return
            if info is None or info.si_pid == 0:
                return
            pid = info.si_pid
            try:
                _, status = os.waitpid(pid, 0)
            except ChildProcessError:
                continue
            callback = self._watched.pop(pid, None)
            if callback is None:
                self.orphans_reaped += 1
                continue
            code, sig = decode_status(status)
            callback(pid, code, sig)
