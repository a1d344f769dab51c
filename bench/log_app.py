"""The log benchmark's app: write COUNT lines to stdout, as fast as it can.

usage: log_app.py COUNT RESULT_FILE [KIND]

Without KIND, lines of about 100 bytes (``... INFO api seq=0000042 GET /api/v1/orders/...``); with
KIND, the lines of that kind of bench/corpus.py (the same lines, in the same order, every run).
Writes through an 8 KiB buffer (Python's default for a non-terminal stdout; set explicitly, so
PYTHONUNBUFFERED, which corral sets, does not change what is measured). Each line carries a
sequence number (``seq=0000042``) so the benchmark can check that every line arrived exactly
once. When done, appends ``{"start": wall, "end": wall, "write_s": seconds}`` to RESULT_FILE:
the app's own time to make and write the lines, measured inside the app.
"""
import json
import os
import sys
import time

count = int(sys.argv[1])
kind = sys.argv[3] if len(sys.argv) > 3 else None
out = open(1, "wb", buffering=8192, closefd=False)
write = out.write
start_wall = time.time()
if kind is None:
    line = b"%s INFO api seq=%07d GET /api/v1/orders/%06d status=200 duration_ms=%d user=alice ok\n"
    day = time.strftime("%Y-%m-%d").encode()
    t0 = time.perf_counter()
    for i in range(count):
        write(line % (day, i, i % 999983, i % 97))
else:  # one formatting per line, as above: head + number + tail of the corpus's line templates
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import corpus

    tpl = [(t.head, t.width, t.tail) for t in corpus.templates(kind, corpus.DISTINCT)]
    n = len(tpl)
    start_wall = time.time()
    t0 = time.perf_counter()
    for i in range(count):
        head, width, tail = tpl[i % n]
        write(b"%s%0*d%s" % (head, width, i, tail))
out.flush()
elapsed = time.perf_counter() - t0
with open(sys.argv[2], "a") as f:
    f.write(json.dumps({"start": start_wall, "end": time.time(), "write_s": elapsed, "pid": os.getpid()}) + "\n")
