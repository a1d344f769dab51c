"""Plain-Python app for bench/reload.py: standard library http.server on the socket corral hands
over (``corral.app.listen()``), ``READY=1`` (``corral.app.ready()``) once serving.

Like tests/apps/webapp.py, but graceful with keep-alive clients such as wrk: after SIGTERM it
stops accepting (the slot's socket stays open in the daemon, so the replacement accepts what
queues there) and answers the next request of each open connection with "Connection: close",
so no connection is cut while a request is on its way.  Environment: BOOT_DELAY=s (default 1).
"""

import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from corral import app as corral_app

BODY = f"pid={os.getpid()}\n".encode()
stopping = threading.Event()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 2.0  # an idle keep-alive connection ends after this (only matters while stopping)

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(BODY)))
        if stopping.is_set():
            self.send_header("Connection", "close")  # also sets self.close_connection
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *args: object) -> None:
        pass


def main() -> None:
    time.sleep(float(os.environ.get("BOOT_DELAY", "1")))
    sockets = corral_app.listen()
    if not sockets:
        print("no socket from corral (LISTEN_FDS)", file=sys.stderr)
        sys.exit(2)
    server = ThreadingHTTPServer(sockets[0].getsockname(), Handler, bind_and_activate=False)
    server.socket.close()
    server.socket = sockets[0]
    server.daemon_threads = False  # server_close() waits for the connections' threads

    def stop(*_: object) -> None:
        stopping.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    corral_app.ready()
    server.serve_forever(poll_interval=0.05)
    server.server_close()


if __name__ == "__main__":
    main()
