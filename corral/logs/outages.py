"""The rare path of :class:`corral.logs.lines.LogLoss`: a stream that drops lines (a full disk, a
quota, an I/O error), from its first dropped line to its report.  Loaded at the first line
dropped: a daemon whose disks never fill never loads it.

An outage belongs to an instance's stream, not to one of its processes: a crash-looping app on a
full disk makes one daemon.log line and one event, however often it restarts.  It ends when a
write of that stream succeeds again, or when the instance or its app is gone; either way a
:class:`corral.events.LogDropped` event says how many lines and bytes were lost, since when and
why (daemon.log says which of the two it was).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from corral.events import LogDropped

if TYPE_CHECKING:
    from corral.logs.lines import LogLoss

log = logging.getLogger("corral.daemon")


class Outage:
    """One instance stream's lines dropped since its first failed write."""

    __slots__ = ("index", "stream", "path", "since", "error", "lines", "size")

    def __init__(self, index: int, stream: str, path: str, since: float, error: str) -> None:
        self.index, self.stream, self.path, self.since, self.error = index, stream, path, since, error
        self.lines = self.size = 0

    def row(self) -> dict[str, Any]:
        return {"instance": self.index, "stream": self.stream, "path": self.path, "since": self.since,
                "lines": self.lines, "bytes": self.size, "error": self.error}


def drop(loss: LogLoss, index: int, stream: str, path: str, data: bytes, now: float,
         exc: BaseException | None) -> None:
    """Count the lines of ``data`` as dropped (see :meth:`corral.logs.lines.LogLoss.drop`)."""
    lines, size = data.count(b"\n"), len(data)
    if stream == "out":
        loss.out_lines += lines
        loss.out_bytes += size
    else:
        loss.err_lines += lines
        loss.err_bytes += size
    if loss.outages is None:
        loss.outages = {}
    outage = loss.outages.get((index, stream))
    if outage is None:
        outage = loss.outages[(index, stream)] = Outage(index, stream, path, now, _reason(exc))
        log.warning("%s[%d]: cannot write its std%s log %s (%s): its lines are dropped and counted until "
                    "a write succeeds (tried again every second)", loss.app, index, stream, path, outage.error)
    outage.lines += lines
    outage.size += size


def end(loss: LogLoss, index: int | None) -> None:
    """Report the outages of instance ``index`` (of every instance: None), which is gone."""
    going_on = loss.outages or {}
    for key in [k for k in going_on if index is None or k[0] == index]:
        report(loss, going_on.pop(key), "gone while its std%s log could not be written")


def report(loss: LogLoss, outage: Outage, what: str) -> None:
    """An outage is over (already out of ``loss.outages``): one daemon.log line, one event."""
    if not loss.outages:
        loss.outages = None
    log.warning("%s[%d]: " + what + "; %d line(s) (%d bytes) were dropped", loss.app, outage.index,
                outage.stream, outage.lines, outage.size)
    if loss.publish is not None:
        loss.publish(LogDropped(app=loss.app, instance=outage.index, stream=outage.stream, path=outage.path,
                                lines=outage.lines, size=outage.size, since=outage.since, error=outage.error))


def _reason(exc: BaseException | None) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return f"{type(exc).__name__}: {exc}" if exc is not None else "a write failed"
