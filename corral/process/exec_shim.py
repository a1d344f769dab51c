"""The exec shim: what must happen in the child itself, after fork and before the program runs.

usage: python -I -S exec_shim.py [--fds FD[,FD...]] [--rlimit NAME=SOFT:HARD]... [--ptracer PID] -- PROGRAM [ARGS...]

* ``--fds``: socket activation.  systemd's protocol wants the sockets at fd 3 upward and
  ``LISTEN_PID`` equal to the pid of the program that reads them, which only the child itself
  can know; ``subprocess`` keeps passed fds at their numbers.  The daemon sets ``LISTEN_FDS``
  and ``LISTEN_FDNAMES``.
* ``--rlimit``: an app's resource limits (``limits``), set before the program runs (-1: unlimited).
* ``--ptracer PID``: ``prctl(PR_SET_PTRACER, PID)``, so that under Yama's ``ptrace_scope = 1`` the
  daemon (PID) and the profiler it starts may trace the program (the setting survives exec).
  Only then is ``ctypes`` loaded (a few ms); a kernel without Yama refuses the call: ignored.

This file runs with the standard library only and without site imports, so it costs one short
interpreter start, and only for apps that need it.  Then it execs the program in the same
process (same pid, same process group, same cgroup).
"""

import fcntl
import os
import resource
import sys

FIRST_FD = 3


def move_fds(sources):
    moved = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 64) for fd in sources]
    for fd in sources:
        os.close(fd)
    for i, fd in enumerate(moved):
        os.dup2(fd, FIRST_FD + i, inheritable=True)
        os.close(fd)
    os.environ["LISTEN_PID"] = str(os.getpid())


def set_limit(spec):
    name, _, values = spec.partition("=")
    soft, hard = (int(v) for v in values.split(":"))
    infinity = resource.RLIM_INFINITY
    resource.setrlimit(getattr(resource, "RLIMIT_" + name.upper()),
                       (infinity if soft < 0 else soft, infinity if hard < 0 else hard))


PR_SET_PTRACER = 0x59616D61


def allow_tracer(pid):
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PTRACER, pid, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def main():
    args = sys.argv[1:]
    fds = None
    limits = []
    while args and args[0] != "--":
        option, value, args = args[0], args[1], args[2:]
        if option == "--fds":
            fds = [int(fd) for fd in value.split(",") if fd]
        elif option == "--rlimit":
            limits.append(value)
        elif option == "--ptracer":
            allow_tracer(int(value))
    argv = args[1:]
    try:
        for spec in limits:
            set_limit(spec)
    except (ValueError, OSError) as exc:
        sys.stderr.write(f"corral: cannot set the limit {spec}: {exc}\n")
        os._exit(127)
    if fds is not None:
        move_fds(fds)
    try:
        os.execvp(argv[0], argv)
    except OSError as exc:
        sys.stderr.write(f"corral: cannot run {argv[0]!r}: {exc.strerror}\n")
        os._exit(127)


if __name__ == "__main__":
    main()
