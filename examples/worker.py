"""A background worker for the demo: takes a "job" every INTERVAL seconds and logs it."""

import os
import signal
import sys
import time

running = True


def stop(*_: object) -> None:
    global running
    running = False


signal.signal(signal.SIGTERM, stop)
interval = float(os.environ.get("INTERVAL", "2"))
done = 0
print(f"worker {os.getpid()} started, queue={os.environ.get('QUEUE', 'default')}")
while running:
    done += 1
    print(f"processed job {done}")
    time.sleep(interval)
print(f"worker {os.getpid()} stopping after {done} jobs", file=sys.stderr)
