"""What keeps ``daemon.log`` from flooding: the same message at most :data:`BURST` times a
:data:`WINDOW`, and a traceback only for the first of its kind in a window.

A client's mistakes are answered, not logged; but a bug a client can trigger again and again, or
asyncio complaining at every failed ``accept()`` when file descriptors run out, would otherwise
write a traceback each time (the issue saw 62 MB in 20 s).  Records past the burst are counted
and the count is written with the next one that passes: nothing disappears silently.
"""

from __future__ import annotations

import logging
import time
from typing import Callable

WINDOW = 60.0
BURST = 10


class Throttle(logging.Filter):
    """A filter for the daemon's log handler (``install``)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._clock = clock
        self._seen: dict[tuple[str, object], list[float]] = {}  # key -> [window start, count]
        self._suppressed = 0

    def filter(self, record: logging.LogRecord) -> bool:
        now = self._clock()
        key = (record.name, record.msg)
        window = self._seen.get(key)
        if window is None or now - window[0] > WINDOW:
            if len(self._seen) > 1000:  # many different messages: start over rather than grow
                self._seen.clear()
            window = self._seen[key] = [now, 0]
        window[1] += 1
        if window[1] > BURST:
            self._suppressed += 1
            return False
        if record.exc_info and window[1] > 1:  # the traceback was written once in this window
            exc = record.exc_info[1]
            record.msg = f"{record.getMessage()}: {type(exc).__name__}: {exc}"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        if self._suppressed:
            record.msg = f"{record.getMessage()} ({self._suppressed} repeated lines were not written)"
            record.args = None
            self._suppressed = 0
        return True


def install(handler: logging.Handler) -> Throttle:
    throttle = Throttle()
    handler.addFilter(throttle)
    return throttle
