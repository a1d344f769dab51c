"""A worker with no readiness configuration: corral sees it ready when it listens, or after listen_timeout.

Environment knobs:
  BROKEN=seconds   exit 1 with a traceback after that many seconds (a broken build)
  LISTEN_PORT=N    after LISTEN_DELAY seconds, listen on 127.0.0.1:N (SO_REUSEPORT, so old and new coexist)
  LISTEN_DELAY=s   (default 0)
Prints "worker pid=<pid> version=<VERSION>" at start, then stays up until SIGTERM.
"""

import os
import signal
import socket
import sys
import time

print(f"worker pid={os.getpid()} version={os.environ.get('VERSION', '1')}", flush=True)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
if os.environ.get("BROKEN"):
    time.sleep(float(os.environ["BROKEN"]))
    raise RuntimeError("the new build is broken")
if os.environ.get("LISTEN_PORT"):
    time.sleep(float(os.environ.get("LISTEN_DELAY", "0")))
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", int(os.environ["LISTEN_PORT"])))
    sock.listen()
while True:
    time.sleep(3600)
