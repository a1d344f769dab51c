"""Line formats (timestamps, moment.js/strftime formats, JSON lines, UTF-8) and the pipe's line framing."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from datetime import datetime, UTC

import pytest

from corral.logs.pipe import _cut_at, _has_long_line, _split_long_lines
from corral.logs.format import iso_local, json_head, json_lines, make_clock, stamp_lines, valid_utf8

T = datetime(2026, 11, 22, 5, 40, 7, 123456, tzinfo=UTC).timestamp()


@pytest.fixture(autouse=True)
def utc() -> Iterator[None]:
    """Run in UTC, and put the zone back afterwards (``time.tzset`` is process-wide)."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if old is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = old
    time.tzset()


def test_default_is_iso_local_with_milliseconds_and_offset() -> None:
    assert iso_local(T) == "2026-11-22T05:40:07.123+00:00"
    assert make_clock(None)(T) == "2026-11-22T05:40:07.123+00:00"


def test_offset_follows_the_local_zone() -> None:
    os.environ["TZ"] = "Asia/Kolkata"
    time.tzset()
    assert iso_local(T) == "2026-11-22T11:10:07.123+05:30"
    assert make_clock("YYYY-MM-DD HH:mm:ss Z")(T) == "2026-11-22 11:10:07 +05:30"
    assert make_clock("HH:mm ZZ")(T) == "11:10 +0530"


@pytest.mark.parametrize(("fmt", "expected"), [
    ("YYYY-MM-DD HH:mm:ss Z", "2026-11-22 05:40:07 +00:00"),        # PM2's documented example
    ("YYYY-MM-DD HH:mm:ss.SSS", "2026-11-22 05:40:07.123"),
    ("DD/MM/YY h:mm A", "22/11/26 5:40 AM"),
    ("ddd, D MMM YYYY", "Sun, 22 Nov 2026"),
    ("dddd Do MMMM", "Sunday 22nd November"),
    ("[at] HH[h]mm", "at 05h40"),                                  # [literal]
    ("X", str(int(T))),
    ("x", str(int(T * 1000))),
    ("%Y-%m-%d %H:%M:%S", "2026-11-22 05:40:07"),                  # strftime
    ("%H:%M:%S.%f %z", "05:40:07.123456 +0000"),
])
def test_formats(fmt: str, expected: str) -> None:
    assert make_clock(fmt)(T) == expected


def test_stamp_every_line_of_a_chunk() -> None:
    assert stamp_lines(b"a\nb\n\nc\n", b"T ") == b"T a\nT b\nT \nT c\n"


def test_json_lines() -> None:
    head = json_head("api", 2, "err")
    out = json_lines(b'plain\n{"k": "v"}\nq"uote\\ \xff\n', "2026-11-22T05:40:07.123+00:00", head)
    lines = out.decode().splitlines()
    records = [json.loads(line) for line in lines]
    assert records[0] == {"ts": "2026-11-22T05:40:07.123+00:00", "app": "api", "instance": 2,
                          "stream": "err", "message": "plain"}
    assert list(records[0]) == ["ts", "app", "instance", "stream", "message"]
    assert records[1]["message"] == '{"k": "v"}'
    assert records[2]["message"] == 'q"uote\\ \ufffd'


def test_valid_utf8() -> None:
    ascii_chunk = b"plain\n"
    assert valid_utf8(ascii_chunk) is ascii_chunk
    good = "héllo ✓\n".encode()
    assert valid_utf8(good) is good
    assert valid_utf8(b"bad \xff\xfe end\n").decode() == "bad \ufffd\ufffd end\n"
    assert valid_utf8(b"cut \xe2\x9c\n").decode() == "cut \ufffd\n"


# -- pipe framing --------------------------------------------------------------------------------
def test_long_line_detection() -> None:
    short = b"x" * 10 + b"\n"
    assert not _has_long_line(short * 1000, 64)
    assert _has_long_line(short * 100 + b"y" * 65 + b"\n" + short * 100, 64)
    assert not _has_long_line(b"y" * 64 + b"\n", 64)
    assert _has_long_line(b"y" * 65 + b"\n", 64)


def test_splitting_never_cuts_a_utf8_character() -> None:
    line = ("é" * 40).encode()  # 2-byte characters: byte 63 is the middle of one
    assert _cut_at(line, 63) == 62
    assert _cut_at(b"\xff" * 100, 10) == 10  # not UTF-8: cut where asked
    emoji = ("a" + "😀" * 30).encode()  # 4-byte characters
    pieces = _split_long_lines(emoji + b"\n", 16).split(b"\n")[:-1]
    assert all(len(p) <= 16 for p in pieces)
    assert b"".join(pieces) == emoji
    assert all(p.decode("utf-8") for p in pieces)  # every piece is valid on its own


def test_split_keeps_short_lines_and_order() -> None:
    data = b"ab\n" + b"z" * 25 + b"\ncd\n"
    assert _split_long_lines(data, 10) == b"ab\nzzzzzzzzzz\nzzzzzzzzzz\nzzzzz\ncd\n"


def test_stamp_regex_used_by_the_crash_parser_matches() -> None:
    from corral.logs.tracebacks import TIMESTAMP_PREFIX

    assert TIMESTAMP_PREFIX.match(iso_local(T) + " Traceback")
    assert re.match(r"^\d{4}", iso_local(T))


def test_the_default_clock_reads_the_calendar_once_per_second_and_agrees_with_iso_local() -> None:
    clock = make_clock(None)
    for now in [T, T + 0.0005, T + 0.999, T + 1, T + 1.001, T - 0.5, T + 86_400.25, 0.0, 1.9999]:
        assert clock(now) == iso_local(now)
