"""The crashing app of the crash-to-restart benchmark (bench/core.py), the same for corral and PM2.

Usage: python crash_app.py LOG [UPTIME_SECONDS]

Appends ``start <time.time()> <pid>`` to LOG as its first action, sleeps UPTIME_SECONDS (2.0:
longer than both tools' min_uptime of 1 s, so neither applies a backoff), appends
``exit <time.time()> <pid>`` and exits with status 1 at once (os._exit: no interpreter
teardown between the stamp and the exit).  The gap between one ``exit`` line and the next
``start`` line is the supervisor's reaction + spawn + this interpreter's start-up, measured
the same way whichever tool restarts it.
"""

import os
import sys
import time

_t0 = time.time()


def _stamp(path: str, kind: str, t: float) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{kind} {t:.6f} {os.getpid()}\n".encode())
    finally:
        os.close(fd)


def main() -> None:
    log = sys.argv[1]
    uptime = float(sys.argv[2]) if len(sys.argv) > 2 else 2.0
    _stamp(log, "start", _t0)
    time.sleep(uptime)
    _stamp(log, "exit", time.time())
    os._exit(1)


if __name__ == "__main__":
    main()
