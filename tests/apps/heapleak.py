"""Imports corral.app (so ``profile heap`` can ask it for a tracemalloc snapshot) and leaks 1 MiB
every LEAK_EVERY seconds (default 0.05) in :func:`leak_one`, up to LEAK_MAX_MB (default 300)."""

import os
import time

import corral.app  # noqa: F401  (answers heap requests)

hoard = []


def leak_one() -> None:
    hoard.append(bytearray(1024 * 1024))  # the leaking line


if __name__ == "__main__":
    print("leaking", flush=True)
    every, top = float(os.environ.get("LEAK_EVERY", "0.05")), int(os.environ.get("LEAK_MAX_MB", "300"))
    while True:
        if len(hoard) < top:
            leak_one()
        time.sleep(every)
