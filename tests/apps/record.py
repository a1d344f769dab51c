"""Append one JSON line to OUTFILE at start ({pid, argv, env subset}), then serve signals.

usage: record.py OUTFILE [VAR ...]   (VARs: environment variables to record)
SIGUSR1 appends {"signal": "SIGUSR1"}.  SIGTERM exits 0.
"""
import json
import os
import signal
import sys
import time

out = sys.argv[1]
names = sys.argv[2:]


def write(obj):
    with open(out, "a") as f:
        f.write(json.dumps(obj) + "\n")


signal.signal(signal.SIGUSR1, lambda *_: write({"signal": "SIGUSR1", "pid": os.getpid()}))
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
write({"pid": os.getpid(), "cwd": os.getcwd(), "env": {n: os.environ.get(n) for n in names}})
print(f"record started {os.getpid()}", flush=True)
while True:
    time.sleep(3600)
