"""The app `corral deploy` tests deploy from a git repository they make: an HTTP server on the
socket corral hands over, answering "version=<VERSION> pid=<pid> instance=<n>".

BREAK (a file beside it) makes a bad release: ``health`` -> /healthz answers 500 from 1 s after
boot; ``crash`` -> the process dies on a TypeError 1.5 s after boot (a code bug); ``boot`` -> it
exits before it is ready.
"""

import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from corral import app as corral_app

HERE = os.path.dirname(os.path.abspath(__file__))
VERSION = open(os.path.join(HERE, "VERSION")).read().strip()
BREAK = open(os.path.join(HERE, "BREAK")).read().strip() if os.path.exists(os.path.join(HERE, "BREAK")) else ""
BOOTED = time.monotonic()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        sick = self.path == "/healthz" and BREAK == "health" and time.monotonic() - BOOTED > 1.0
        data = f"version={VERSION} pid={os.getpid()} instance={os.environ.get('CORRAL_INSTANCE')}\n".encode()
        self.send_response(500 if sick else 200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


def main() -> None:
    if BREAK == "boot":
        raise SystemExit("cannot boot: DATABASE_URL is not set")
    sockets = corral_app.listen()
    if not sockets:
        print("no socket from corral", file=sys.stderr)
        sys.exit(2)
    server = ThreadingHTTPServer(sockets[0].getsockname(), Handler, bind_and_activate=False)
    server.socket.close()
    server.socket = sockets[0]
    server.daemon_threads = False
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    print(f"serving version={VERSION} pid={os.getpid()}", flush=True)
    corral_app.ready()
    if BREAK == "crash":
        threading.Thread(target=server.serve_forever, daemon=True).start()
        time.sleep(1.5)
        total = len(VERSION) + None  # the bug this release ships
        print(total)
    server.serve_forever()
    server.server_close()


if __name__ == "__main__":
    main()
