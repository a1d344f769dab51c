"""WSGI app for bench/reload.py under gunicorn (no --preload: each worker imports it, so
each worker boots in BOOT_DELAY seconds, default 1).  Answers every request with "pid=<pid>"."""

import os
import time

time.sleep(float(os.environ.get("BOOT_DELAY", "1")))


def app(environ, start_response):
    body = f"pid={os.getpid()}\n".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
