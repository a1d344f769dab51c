"""Print numbered lines ("tick N" + padding) to stdout, one every INTERVAL_MS (0: as fast as possible).

usage: ticker.py INTERVAL_MS [COUNT]   (COUNT: exit 0 after that many lines; default: forever)
"""
import sys
import time

interval = float(sys.argv[1]) / 1000
count = int(sys.argv[2]) if len(sys.argv) > 2 else -1
write = sys.stdout.buffer.write
pad = b"p" * 40
i = 0
while i != count:
    write(b"tick %d %s\n" % (i, pad))
    sys.stdout.flush()
    i += 1
    if interval:
        time.sleep(interval)
