"""A process that starts a helper which leaves its process group, as daemonizing helpers do.

usage: escape.py PIDFILE MODE [--helper-ignores-term] [--clean-env] [--exit]
MODE: setsid (the helper calls setsid()), setpgid (setpgid(0, 0)), double (fork twice: the
middle process exits, the grandchild calls setsid() and is re-parented to the subreaper).
The helper, then the main process, append their pids to PIDFILE (one line each), then sleep.
--helper-ignores-term: the helper ignores SIGTERM.  --clean-env: the helper execs sleep with
an empty environment (no marker: only a cgroup can find it).  --exit: the main process exits
with status 1 once the helper is up (a crash loop that leaves a helper behind at every run).
"""
import os
import signal
import sys
import time

pidfile, mode = sys.argv[1], sys.argv[2]
flags = set(sys.argv[3:])


def helper(ready: int) -> None:
    if mode == "setpgid":
        os.setpgid(0, 0)
    else:
        os.setsid()
    if "--helper-ignores-term" in flags:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with open(pidfile, "a") as f:
        f.write(f"{os.getpid()}\n")
    os.write(ready, b"x")
    os.close(ready)
    if "--clean-env" in flags:
        os.execve("/bin/sleep", ["sleep", "3600"], {})
    while True:
        time.sleep(3600)


r, w = os.pipe()
first = os.fork()
if first == 0:
    os.close(r)
    if mode == "double" and os.fork() != 0:
        os._exit(0)  # the middle process
    helper(w)
os.close(w)
os.read(r, 1)  # the helper's pid is in the file
if mode == "double":
    os.waitpid(first, 0)
with open(pidfile, "a") as f:
    f.write(f"{os.getpid()}\n")
print("escape ready", flush=True)
if "--exit" in flags:
    sys.exit(1)
while True:
    time.sleep(3600)
