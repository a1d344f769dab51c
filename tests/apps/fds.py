"""Write the open file descriptors of this process (and the LISTEN_* variables) as JSON to OUTFILE."""
import json
import os
import sys
import time

fds = sorted(int(fd) for fd in os.listdir("/proc/self/fd"))
with open(sys.argv[1], "a") as f:
    f.write(json.dumps({"fds": fds, "pid": os.getpid(), "listen_pid": os.environ.get("LISTEN_PID"),
                        "listen_fds": os.environ.get("LISTEN_FDS"), "names": os.environ.get("LISTEN_FDNAMES")}) + "\n")
while True:
    time.sleep(3600)
