"""From a chunk of lines to a log file: the per-instance sinks, and the lines they could not write.

A sink (:func:`make_sink`) takes a chunk of complete lines from a pipe reader and does, per
chunk: invalid UTF-8 -> U+FFFD, redaction (:meth:`corral.app.redact.Redactor.redact_chunk`), one
timestamp for the chunk (or JSON wrapping per line), one ``write`` (a few for a chunk larger than
a quarter of ``log_max_size``).

A sink never raises and never blocks its reader, whatever happens to the file or the redactor
(nothing is lost without being counted, and an app is never slowed by a full disk: PM2 and
journald drop and count too):

* a write that fails (``ENOSPC``, ``EDQUOT``, ``EIO`` ...) leaves whole lines in the file
  (:meth:`corral.logs.files.RotatingFile.write`); the lines of that chunk that did not get in,
  and those of the chunks that come while the file waits for its retry (one second), are
  **dropped and counted** per app and stream
  (:class:`LogLoss`).  One ``daemon.log`` line says when an instance's stream starts dropping;
  when a write succeeds again a :class:`corral.events.LogDropped` event says how many lines and
  bytes were lost, since when and why.
* a line the redactor cannot redact (it raised, or the chunk's :func:`budget` ran out) is
  written as ``[line withheld: redaction failed]`` with its timestamp, and counted.  The budget
  bounds the built-in rules by itself (they check the time between lines); an app's own
  ``redact_patterns`` may take minutes inside one search (``(\\w+)=secret`` on a 64 KiB line of
  letters: 30 s), so their searches run under a timer (``SIGALRM``, which interrupts a regular
  expression: :mod:`corral.logs.redactguard`).
* anything else that goes wrong (a bug) drops the chunk, counted, with one traceback.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Callable

from corral.logs.format import json_head, json_lines, make_clock, valid_utf8

if TYPE_CHECKING:
    from corral.config.spec import AppSpec
    from corral.events import Event
    from corral.logs.files import Writable
    from corral.logs.outages import Outage

log = logging.getLogger("corral.daemon")
Sink = Callable[[bytes], None]
Redact = Callable[[bytes, float], tuple[bytes, int]]  # Redactor.redact_chunk: (chunk, seconds) -> (chunk, withheld)
#: The time a chunk's redaction may take (:func:`budget`): REDACT_MIN seconds, plus a second per
#: REDACT_RATE bytes.  The lines not reached by then are withheld.  The built-in rules on the
#: worst floods (every line a secret: ``token=x1`` lines, JSON lines that each hold a password)
#: go at 2-6 MB/s on a shared 2-core VM: a chunk slower than 1 MiB/s is something else (an
#: app's own pattern taking seconds on one line).  The pipe reader keeps floods to small chunks.
REDACT_MIN = 0.1
REDACT_RATE = 1 << 20


def budget(size: int) -> float:
    """Seconds of redaction a chunk of ``size`` bytes may take."""
    return REDACT_MIN + size / REDACT_RATE


class LogLoss:
    """One app's lines that did not reach its log files as they were written, since this daemon
    added the app: dropped (never written; lines and bytes per stream) and ``withheld`` (written
    as ``[line withheld: redaction failed]``).  ``publish`` gets the
    :class:`corral.events.LogDropped` of every outage that ended.  Small on purpose (one per app):
    outages (:mod:`corral.logs.outages`, loaded at the first line dropped) exist only while a
    stream drops lines."""

    __slots__ = ("app", "out_lines", "out_bytes", "err_lines", "err_bytes", "withheld", "publish", "outages")

    def __init__(self, app: str, publish: Callable[[Event], None] | None = None) -> None:
        self.app = app
        self.out_lines = self.out_bytes = self.err_lines = self.err_bytes = self.withheld = 0
        self.publish = publish
        self.outages: dict[tuple[int, str], Outage] | None = None  # (instance, stream) -> the one going on

    def drop(self, index: int, stream: str, path: str, data: bytes, now: float,
             exc: BaseException | None = None) -> None:
        """Count the lines of ``data`` as dropped; the first drop of an outage says so in daemon.log.
        An outage outlives the instance's process: the next one continues it (one line, one event)."""
        from corral.logs import outages

        outages.drop(self, index, stream, path, data, now, exc)

    def resumed(self, index: int, stream: str) -> None:
        """A write of this stream succeeded: the end of its outage, if one was going on (reported)."""
        if self.outages is not None and (index, stream) in self.outages:
            from corral.logs import outages

            outages.report(self, self.outages.pop((index, stream)), "writing its std%s log again")

    def end(self, index: int | None = None) -> None:
        """The instance ``index`` (every one: None) is gone: report the outages it leaves."""
        if self.outages is not None:
            from corral.logs import outages

            outages.end(self, index)

    @property
    def lines(self) -> int:
        return self.out_lines + self.err_lines

    @property
    def size(self) -> int:
        return self.out_bytes + self.err_bytes

    def summary(self) -> dict[str, int]:
        """What ``corral ls --json`` shows (per app)."""
        return {"dropped_lines": self.lines, "dropped_bytes": self.size, "withheld_lines": self.withheld}

    def details(self) -> dict[str, Any]:
        """What ``corral describe --json`` shows: the summary, per stream, and the outages going on."""
        going_on = [o.row() for _, o in sorted((self.outages or {}).items())]
        return {**self.summary(), "streams": {"out": {"lines": self.out_lines, "bytes": self.out_bytes},
                                              "err": {"lines": self.err_lines, "bytes": self.err_bytes}},
                "dropping": going_on}


def piece_limit(max_size: int) -> int:
    """The largest piece of a chunk written at once: a quarter of ``log_max_size`` (64 KiB to
    1 MiB), so rotation keeps files within the limit although one read may hold 1 MiB."""
    return max(64 * 1024, min(1 << 20, max_size // 4)) if max_size else 1 << 62


def pieces(chunk: bytes, limit: int) -> list[bytes]:
    """``chunk`` (whole lines) cut at newlines into pieces of at most ``limit`` bytes (a single
    longer line stays whole)."""
    if len(chunk) <= limit:
        return [chunk]
    out, start, end = [], 0, len(chunk)
    while end - start > limit:
        cut = chunk.rfind(b"\n", start, start + limit) + 1
        if cut <= start:  # one line longer than the limit: up to its own newline
            cut = chunk.find(b"\n", start + limit) + 1 or end
        out.append(chunk[start:cut])
        start = cut
    if start < end:
        out.append(chunk[start:])
    return out


def make_redactor(spec: AppSpec) -> Any:
    """The app's redactor, or None when ``redact = false``."""
    if not spec.redact:
        return None
    keys, patterns = spec.redact_keys, spec.redact_patterns
    from corral.app.redact import Redactor, default_redactor

    return Redactor(keys, patterns) if keys or patterns else default_redactor()


def redactor_of(spec: AppSpec) -> Redact | None:
    """The app's ``redact_chunk`` (under a timer when it has its own patterns), or None."""
    redactor = make_redactor(spec)
    if redactor is None:
        return None
    if not spec.redact_patterns:
        return redactor.redact_chunk
    from corral.logs.redactguard import guarded  # only for apps with their own patterns

    return guarded(redactor.redact_chunk)


def make_sink(spec: AppSpec, index: int, stream: str, f: Writable, loss: LogLoss | None = None) -> Sink:
    """The function a pipe reader calls with each chunk of complete lines of one stream; it never
    raises (see the module docstring).  ``loss``: the app's counters (a private one without).
    One closure per sink and nothing else: the daemon holds two per instance."""
    redact = redactor_of(spec)
    loss = loss if loss is not None else LogLoss(spec.name)
    clock = make_clock(spec.log_date_format)
    if spec.log_type == "json":
        return _json_sink(f, loss, index, stream, redact, clock, json_head(spec.name, index, stream))
    if not spec.time:
        return _plain_sink(f, loss, index, stream, redact)
    return _stamped_sink(f, loss, index, stream, redact, clock)


def _json_sink(f: Writable, loss: LogLoss, index: int, stream: str, redact: Redact | None,
               clock: Callable[[float], str], head: str) -> Sink:
    write, now_of = f.write, time.time

    def json_sink(chunk: bytes) -> None:
        try:
            if redact is not None:
                chunk = _redacted(redact, chunk, loss)
            now = now_of()
            ts = clock(now)
            if f.retry_at and f.waiting():
                loss.drop(index, stream, f.path, chunk, now)
            elif _write_pieces(lambda piece: write(json_lines(piece, ts, head), now), chunk, f, loss, index,
                               stream, now) and loss.outages is not None:
                loss.resumed(index, stream)
        except Exception as exc:  # noqa: BLE001 - see _broken()
            _broken(loss, index, stream, f, chunk, exc)

    return json_sink


def _plain_sink(f: Writable, loss: LogLoss, index: int, stream: str, redact: Redact | None) -> Sink:
    write, now_of = f.write, time.time

    def plain_sink(chunk: bytes) -> None:
        try:
            if not chunk.isascii():
                chunk = valid_utf8(chunk)
            if redact is not None:
                chunk = _redacted(redact, chunk, loss)
            now = now_of()
            if f.retry_at and f.waiting():
                loss.drop(index, stream, f.path, chunk, now)
            elif _write_pieces(lambda piece: write(piece, now), chunk, f, loss, index, stream, now) \
                    and loss.outages is not None:
                loss.resumed(index, stream)
        except Exception as exc:  # noqa: BLE001 - see _broken()
            _broken(loss, index, stream, f, chunk, exc)

    return plain_sink


def _stamped_sink(f: Writable, loss: LogLoss, index: int, stream: str, redact: Redact | None,
                  clock: Callable[[float], str]) -> Sink:
    write_stamped, now_of = f.write_stamped, time.time

    def stamped_sink(chunk: bytes) -> None:
        try:
            if not chunk.isascii():
                chunk = valid_utf8(chunk)
            if redact is not None:
                chunk = _redacted(redact, chunk, loss)
            now = now_of()
            if f.retry_at and f.waiting():
                loss.drop(index, stream, f.path, chunk, now)
                return
            stamp = (clock(now) + " ").encode()
            if len(chunk) <= piece_limit(f.policy.max_size):
                try:
                    write_stamped(stamp, chunk.replace(b"\n", b"\n" + stamp), now)
                except OSError as exc:
                    loss.drop(index, stream, f.path, unkept(chunk, f.kept), now, exc)
                    return
            elif not _write_pieces(lambda piece: write_stamped(stamp, piece.replace(b"\n", b"\n" + stamp), now),
                                   chunk, f, loss, index, stream, now):  # a file never passes log_max_size by a read
                return
            if loss.outages is not None:
                loss.resumed(index, stream)
        except Exception as exc:  # noqa: BLE001 - see _broken()
            _broken(loss, index, stream, f, chunk, exc)

    return stamped_sink


def _redacted(redact: Redact, chunk: bytes, loss: LogLoss) -> bytes:
    """``chunk`` redacted within its time budget; lines withheld (redaction failed) are counted."""
    chunk, withheld = redact(chunk, budget(len(chunk)))
    if withheld:
        loss.withheld += withheld
    return chunk


def _broken(loss: LogLoss, index: int, stream: str, f: Writable, chunk: bytes, exc: Exception) -> None:
    """A sink failed on something else than a write (a bug): one traceback, the lines counted."""
    log.exception("%s[%d]: std%s lines dropped", loss.app, index, stream)
    loss.drop(index, stream, f.path, chunk, time.time(), exc)


def _write_pieces(put: Callable[[bytes], None], chunk: bytes, f: Writable, loss: LogLoss, index: int,
                  stream: str, now: float) -> bool:
    """``put`` each piece of ``chunk``; False when a write failed (the lines it kept out dropped)."""
    written = 0
    try:
        for piece in pieces(chunk, piece_limit(f.policy.max_size)):
            put(piece)
            written += len(piece)
    except OSError as exc:
        loss.drop(index, stream, f.path, unkept(chunk[written:], f.kept), now, exc)
        return False
    return True


def unkept(data: bytes, kept: int) -> bytes:
    """``data`` (whole lines) without its first ``kept`` lines: what a failed write kept out."""
    return data.split(b"\n", kept)[-1] if kept else data
