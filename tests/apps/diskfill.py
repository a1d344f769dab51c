"""Write COUNT numbered lines ("fill N" + padding) to stdout as fast as it can, then record in
RESULT how long its slowest write took; then on each SIGUSR1 write MORE lines "more N" (one
every 20 ms) and record again.  Sleeps between the two.

usage: diskfill.py COUNT MORE RESULT

RESULT (JSON): {"fill": lines written, "more": lines written, "slowest": seconds}
"""
import json
import os
import signal
import sys
import time

count, more, result = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
write = sys.stdout.buffer.write
pad = b"p" * 100
done = {"fill": 0, "more": 0, "slowest": 0.0}


def timed(line: bytes) -> None:
    start = time.monotonic()
    write(line)
    sys.stdout.flush()
    done["slowest"] = max(done["slowest"], time.monotonic() - start)


def record() -> None:
    with open(result + ".tmp", "w") as f:
        json.dump(done, f)
    os.replace(result + ".tmp", result)


def on_usr1(signum: int, frame: object) -> None:
    for _ in range(more):
        timed(b"more %d %s\n" % (done["more"], pad))
        done["more"] += 1
        time.sleep(0.02)
    record()


signal.signal(signal.SIGUSR1, on_usr1)
for i in range(count):
    timed(b"fill %d %s\n" % (i, pad))
    done["fill"] += 1
record()
while True:
    signal.pause()
