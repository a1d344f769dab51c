"""Write COUNT numbered lines to stdout as fast as possible, then exit 0.

usage: flood.py COUNT [--stderr] [--no-final-newline]
"""
import sys

count = int(sys.argv[1])
stream = sys.stderr if "--stderr" in sys.argv else sys.stdout
write = stream.buffer.write
pad = "x" * 80
for i in range(count - 1):
    write(b"line %d %s\n" % (i, pad.encode()))
last = b"line %d %s" % (count - 1, pad.encode())
write(last if "--no-final-newline" in sys.argv else last + b"\n")
stream.flush()
