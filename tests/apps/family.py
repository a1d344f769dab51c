"""A process family for stop tests.

usage: family.py PIDFILE [--ignore-term] [--child-ignores-term]
Forks a grandchild (a child of this process); both write their pids to PIDFILE
(one per line), then sleep.  With --ignore-term the main process ignores SIGTERM;
with --child-ignores-term the grandchild does.
"""
import os
import signal
import sys
import time

pidfile = sys.argv[1]
flags = set(sys.argv[2:])
child = os.fork()
if child == 0:
    if "--child-ignores-term" in flags:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with open(pidfile, "a") as f:
        f.write(f"{os.getpid()}\n")
    while True:
        time.sleep(3600)
if "--ignore-term" in flags:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
with open(pidfile, "a") as f:
    f.write(f"{os.getpid()}\n")
print("family ready", flush=True)
while True:
    time.sleep(3600)
