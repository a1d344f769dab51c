"""How a captured line is written to a log file: a timestamp prefix, or one JSON object per line.

Pure functions, used by the daemon's log writer (:mod:`corral.logs.files`) on its hot path:

* :func:`make_clock` turns ``log_date_format`` into a function ``unix seconds -> str``.  The
  default is ISO 8601 in local time with milliseconds and the UTC offset
  (``2026-11-22T05:40:00.123+00:00``).  A format containing ``%`` is a ``strftime`` format
  (``datetime``'s, so ``%f`` and ``%z`` work); anything else is read as a moment.js format, as PM2
  uses (``"YYYY-MM-DD HH:mm:ss Z"``): the tokens ``YYYY YY MMMM MMM MM M DD D Do dddd ddd dd d
  HH H hh h mm m ss s SSS SS S A a ZZ Z X x`` are translated and ``[text]`` is kept literally.
* :func:`stamp_lines` prefixes every line of a chunk of complete lines with one stamp (one
  ``bytes.replace`` per chunk, not per line).
* :func:`json_lines` writes each line as ``{"ts", "app", "instance", "stream", "message"}``.
* :func:`valid_utf8` replaces invalid UTF-8 with U+FFFD (the chunk is returned unchanged, as the
  same object, when it is valid).
"""

from __future__ import annotations

import re
import time
from json.encoder import encode_basestring
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from datetime import datetime

__all__ = ["iso_local", "iso_local_clock", "make_clock", "moment_to_parts", "stamp_lines", "json_lines", "json_head",
           "valid_utf8"]

Clock = Callable[[float], str]

_MOMENT = re.compile(r"\[[^\]]*\]|YYYY|YY|MMMM|MMM|MM|M|Do|DD|D|dddd|ddd|dd|d|HH|H|hh|h|mm|m|ss|s"
                     r"|SSS|SS|S|A|a|ZZ|Z|X|x")


def iso_local(now: float) -> str:
    """``2026-11-22T05:40:00.123+00:00``: local time, milliseconds, UTC offset.

    Built with ``time`` alone: ``datetime`` costs the daemon ~0.4 MB and loads only for
    ``log_date_format``.
    """
    t = time.localtime(now)
    minutes = t.tm_gmtoff // 60
    sign = "+" if minutes >= 0 else "-"
    hh, mm = divmod(abs(minutes), 60)
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', t)}.{int(now * 1000) % 1000:03d}{sign}{hh:02d}:{mm:02d}"


def _offset(d: datetime, colon: bool) -> str:
    from datetime import timedelta

    off = d.utcoffset() or timedelta(0)
    minutes = int(off.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    hh, mm = divmod(abs(minutes), 60)
    return f"{sign}{hh:02d}:{mm:02d}" if colon else f"{sign}{hh:02d}{mm:02d}"


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


_TOKENS: dict[str, Callable[[datetime], str]] = {
    "YYYY": lambda d: f"{d.year:04d}", "YY": lambda d: f"{d.year % 100:02d}",
    "MMMM": lambda d: d.strftime("%B"), "MMM": lambda d: d.strftime("%b"),
    "MM": lambda d: f"{d.month:02d}", "M": lambda d: str(d.month),
    "DD": lambda d: f"{d.day:02d}", "D": lambda d: str(d.day), "Do": lambda d: _ordinal(d.day),
    "dddd": lambda d: d.strftime("%A"), "ddd": lambda d: d.strftime("%a"),
    "dd": lambda d: d.strftime("%a")[:2], "d": lambda d: str((d.weekday() + 1) % 7),
    "HH": lambda d: f"{d.hour:02d}", "H": lambda d: str(d.hour),
    "hh": lambda d: f"{(d.hour % 12) or 12:02d}", "h": lambda d: str((d.hour % 12) or 12),
    "mm": lambda d: f"{d.minute:02d}", "m": lambda d: str(d.minute),
    "ss": lambda d: f"{d.second:02d}", "s": lambda d: str(d.second),
    "SSS": lambda d: f"{d.microsecond // 1000:03d}", "SS": lambda d: f"{d.microsecond // 10000:02d}",
    "S": lambda d: str(d.microsecond // 100000),
    "A": lambda d: "AM" if d.hour < 12 else "PM", "a": lambda d: "am" if d.hour < 12 else "pm",
    "ZZ": lambda d: _offset(d, False), "Z": lambda d: _offset(d, True),
    "X": lambda d: str(int(d.timestamp())), "x": lambda d: str(int(d.timestamp() * 1000)),
}


def moment_to_parts(fmt: str) -> list[str | Callable[[datetime], str]]:
    """A moment.js format as literal strings and token functions."""
    parts: list[str | Callable[[datetime], str]] = []
    last = 0
    for m in _MOMENT.finditer(fmt):
        if m.start() > last:
            parts.append(fmt[last:m.start()])
        token = m.group(0)
        parts.append(token[1:-1] if token.startswith("[") else _TOKENS[token])
        last = m.end()
    if last < len(fmt):
        parts.append(fmt[last:])
    return parts


def iso_local_clock() -> Clock:
    """:func:`iso_local` that reads the calendar (``localtime`` + ``strftime``, ~2 µs) once per
    second: a sink stamps every chunk it writes, often many a second."""
    last: list[Any] = [None, "", "", None, ""]  # the second, its text, the UTC offset; the ms, its stamp

    def clock(now: float) -> str:
        ms = int(now * 1000)
        if ms == last[3]:  # a flood is many chunks a millisecond
            return last[4]
        second = int(now)
        if second != last[0]:
            text = iso_local(second)
            last[:3] = [second, text[:19], text[23:]]
        last[3:] = [ms, f"{last[1]}.{ms % 1000:03d}{last[2]}"]
        return last[4]

    return clock


def make_clock(date_format: str | None, utc: bool = False) -> Clock:
    """``unix seconds -> timestamp text`` for ``log_date_format`` (None: ISO 8601, see above)."""
    if not date_format and not utc:
        return iso_local_clock()
    from datetime import UTC, datetime

    tz = UTC if utc else None

    def local(now: float) -> datetime:
        return datetime.fromtimestamp(now, tz).astimezone(tz)

    if not date_format:
        return lambda now: local(now).isoformat(timespec="milliseconds")
    if "%" in date_format:
        return lambda now: local(now).strftime(date_format)
    parts = moment_to_parts(date_format)

    def moment(now: float) -> str:
        d = local(now)
        return "".join(p if isinstance(p, str) else p(d) for p in parts)

    return moment


def check_date_format(date_format: str) -> str:
    """The format rendered once for ``time.time()``; ValueError when it cannot be used."""
    try:
        return make_clock(date_format)(time.time())
    except (ValueError, TypeError) as exc:
        raise ValueError(str(exc)) from None


def stamp_lines(chunk: bytes, stamp: bytes) -> bytes:
    """Prefix each ``\\n``-terminated line of ``chunk`` with ``stamp``."""
    return stamp + chunk[:-1].replace(b"\n", b"\n" + stamp) + b"\n"


def json_head(app: str, instance: int, stream: str) -> str:
    """The fixed fields between ``ts`` and ``message`` of a JSON log line."""
    return f',"app":{encode_basestring(app)},"instance":{int(instance)},"stream":{encode_basestring(stream)},"message":'


def json_lines(chunk: bytes, ts: str, head: str) -> bytes:
    """Each ``\\n``-terminated line of ``chunk`` as ``{"ts":..., <head> "message":...}``."""
    prefix = '{"ts":' + encode_basestring(ts) + head
    lines = chunk.decode("utf-8", "replace").split("\n")
    lines.pop()
    return "".join([f"{prefix}{encode_basestring(line)}}}\n" for line in lines]).encode("utf-8")


def valid_utf8(chunk: bytes) -> bytes:
    """``chunk`` with invalid UTF-8 sequences replaced by U+FFFD (unchanged when valid)."""
    if chunk.isascii():
        return chunk
    try:
        chunk.decode("utf-8")
    except UnicodeDecodeError:
        return chunk.decode("utf-8", "replace").encode("utf-8")
    return chunk
