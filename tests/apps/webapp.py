"""A plain-Python web app served on the socket corral hands over (corral.app.listen()).

Environment knobs:
  BOOT_DELAY=seconds   sleep before serving (a slow boot)
  CRASH_ON_BOOT=1      exit 3 with a traceback instead of serving
  NOTIFY=1             send READY=1 once serving
  WATCHDOG_EVERY=s     send WATCHDOG=1 every s seconds (0: never after the first)
Answers every GET with "pid=<pid> instance=<n> version=<VERSION>"; /healthz is 200 only once serving.
"""

import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from corral import app as corral_app


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = f"pid={os.getpid()} instance={os.environ.get('CORRAL_INSTANCE')} version={os.environ.get('VERSION', '1')}\n"
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


def main() -> None:
    time.sleep(float(os.environ.get("BOOT_DELAY", "0")))
    if os.environ.get("CRASH_ON_BOOT") == "1":
        raise RuntimeError("boot failed: the new version is broken")
    sockets = corral_app.listen()
    if not sockets:
        print("no socket from corral", file=sys.stderr)
        sys.exit(2)
    server = ThreadingHTTPServer(sockets[0].getsockname(), Handler, bind_and_activate=False)
    server.socket.close()
    server.socket = sockets[0]
    server.daemon_threads = False  # server_close() waits for requests in flight: a graceful stop

    def stop(*_: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    print(f"serving pid={os.getpid()} instance={os.environ.get('CORRAL_INSTANCE')}", flush=True)
    if os.environ.get("NOTIFY") == "1":
        corral_app.ready()
    every = os.environ.get("WATCHDOG_EVERY")
    if every is not None:
        corral_app.watchdog()
        if float(every) > 0:
            def beat() -> None:
                while True:
                    time.sleep(float(every))
                    corral_app.watchdog()
            threading.Thread(target=beat, daemon=True).start()
    server.serve_forever()
    server.server_close()


if __name__ == "__main__":
    main()
