"""ASGI app for bench/reload.py, served by real uvicorn (``uvicorn asgi_app:app --fd 3``).

Environment:
  BOOT_DELAY=s    sleep this long at import, before uvicorn serves (default 1)
  BURN_US=us      burn this much CPU time (busy loop on the thread's CPU clock) per request
  COUNT_DIR=path  write this process's request count to COUNT_DIR/<pid> every 0.2 s
Answers every request with "pid=<pid>"; /healthz too.
"""

import os
import threading
import time

time.sleep(float(os.environ.get("BOOT_DELAY", "1")))

PID = os.getpid()
BURN = float(os.environ.get("BURN_US", "0")) / 1e6
BODY = f"pid={PID}\n".encode()
HEADERS = [(b"content-type", b"text/plain"), (b"content-length", str(len(BODY)).encode())]
count = 0

if os.environ.get("COUNT_DIR"):
    def _write_count() -> None:
        path = os.path.join(os.environ["COUNT_DIR"], str(PID))
        while True:
            with open(path + ".tmp", "w") as f:
                f.write(str(count))
            os.replace(path + ".tmp", path)
            time.sleep(0.2)

    threading.Thread(target=_write_count, daemon=True).start()


async def app(scope, receive, send):
    global count
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    if BURN:
        end = time.thread_time() + BURN
        while time.thread_time() < end:
            pass
    count += 1
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
