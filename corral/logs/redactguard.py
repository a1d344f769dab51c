"""An app's own ``redact_patterns`` under a timer: ``SIGALRM`` interrupts a regular expression.

Python's ``re`` checks for signals while it matches, so a search that would take minutes
(``(\\w+)=secret`` on a 64 KiB line of letters: 30 s, on the daemon's event loop) stops when the
chunk's redaction budget (``corral.logs.lines.budget``) runs out; the redactor turns the
interruption into withheld lines, like a line whose rules raise.  Loaded only for apps with
their own patterns (the built-in rules check the time between lines by themselves).
"""

from __future__ import annotations

import signal
import threading
from typing import TYPE_CHECKING, Any

from corral.exceptions import CorralError

if TYPE_CHECKING:
    from corral.logs.lines import Redact


class RedactionTimeout(CorralError):
    """The chunk's redaction budget ran out in the middle of a search (see :func:`guarded`)."""


_armed = [False]  # the SIGALRM handler raises only while a guarded redaction runs


def _on_alarm(signum: int, frame: Any) -> None:
    if _armed[0]:
        _armed[0] = False
        raise RedactionTimeout


def guarded(redact: Redact) -> Redact:
    """``redact`` (a ``Redactor.redact_chunk``) interrupted by ``SIGALRM`` when its budget runs
    out: the redactor turns the interruption into withheld lines, like a line whose rules raise.
    On the main thread only (where signal handlers run); elsewhere ``redact`` runs as it is."""
    main = threading.main_thread().ident

    def run(chunk: bytes, seconds: float) -> tuple[bytes, int]:
        if threading.get_ident() != main:
            return redact(chunk, seconds)
        if signal.getsignal(signal.SIGALRM) is not _on_alarm:
            signal.signal(signal.SIGALRM, _on_alarm)
        try:
            _armed[0] = True
            signal.setitimer(signal.ITIMER_REAL, max(seconds, 1e-6))
            try:
                return redact(chunk, seconds)
            finally:
                _armed[0] = False
                signal.setitimer(signal.ITIMER_REAL, 0)
        except RedactionTimeout:  # it went off between two steps of the redactor: nothing is known clean
            whole, tail = chunk.count(b"\n"), not chunk.endswith(b"\n")
            line = _withheld()
            return line * whole + (line[:-1] if tail else b""), whole + tail

    return run


def _withheld() -> bytes:
    from corral.app.redact import Redactor

    return Redactor.WITHHELD.encode() + b"\n"
