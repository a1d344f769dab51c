"""The web app of webapp.py, leaking: LEAK_MB megabytes every LEAK_EVERY seconds (default 8 MB
every 0.1 s), up to LEAK_MAX_MB, on a timer, while it serves."""

import os
import threading
import time

import webapp

held = []


def leak() -> None:
    step, every = int(os.environ.get("LEAK_MB", "8")), float(os.environ.get("LEAK_EVERY", "0.1"))
    top = int(os.environ.get("LEAK_MAX_MB", "400"))
    while len(held) * step < top:
        held.append(bytearray(os.urandom(16)) * (step * 1024 * 1024 // 16))  # touched: resident
        time.sleep(every)


if __name__ == "__main__":
    threading.Thread(target=leak, daemon=True).start()
    webapp.main()
