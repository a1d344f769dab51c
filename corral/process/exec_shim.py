"""The exec shim for socket activation: fds to 3, 4, ..., LISTEN_PID = own pid, then exec.

usage: python -I -S exec_shim.py FD[,FD...] PROGRAM [ARGS...]

systemd's protocol wants the sockets at fd 3 upward and ``LISTEN_PID`` equal
to the pid of the program that reads them, which only the child itself can
know; ``subprocess`` keeps passed fds at their numbers.  This file runs with
the standard library only and without site imports, so it costs one short
interpreter start.  The daemon sets ``LISTEN_FDS`` and ``LISTEN_FDNAMES``.
"""

import fcntl
import os
import sys

FIRST_FD = 3


def main() -> None:
    sources = [int(fd) for fd in sys.argv[1].split(",") if fd]
    argv = sys.argv[2:]
    moved = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 64) for fd in sources]
    for fd in sources:
        os.close(fd)
    for i, fd in enumerate(moved):
        os.dup2(fd, FIRST_FD + i, inheritable=True)
        os.close(fd)
    os.environ["LISTEN_PID"] = str(os.getpid())
    try:
        os.execvp(argv[0], argv)
    except OSError as exc:
        sys.stderr.write(f"corral: cannot run {argv[0]!r}: {exc.strerror}\n")
        os._exit(127)


if __name__ == "__main__":
    main()
