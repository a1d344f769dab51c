"""A server that answers /healthz until a file exists; then, as MODE says:

- ``hang``: the next request calls :func:`stuck_in_a_known_function`, which never returns
  (the one serving thread is stuck: no request is answered again);
- ``close``: it closes its listening socket (connections are refused).

argv: PORT FLAGFILE MODE
"""

import os
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

PORT, FLAG, MODE = int(sys.argv[1]), sys.argv[2], sys.argv[3]


def stuck_in_a_known_function() -> None:
    threading.Event().wait()


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        if os.path.exists(FLAG) and MODE == "hang":
            stuck_in_a_known_function()
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
        print("answered", flush=True)  # a probe passed: the tests wait for one before the flag

    def log_message(self, *args: object) -> None:
        pass


class Server(HTTPServer):
    allow_reuse_address = True


server = Server(("127.0.0.1", PORT), Handler)
if MODE == "close":
    def closer() -> None:
        while not os.path.exists(FLAG):
            time.sleep(0.05)
        server.socket.shutdown(socket.SHUT_RDWR)
        server.socket.close()
        threading.Event().wait()

    threading.Thread(target=closer, daemon=True).start()
print(f"serving on {PORT}", flush=True)
try:
    server.serve_forever()
except OSError:
    threading.Event().wait()
