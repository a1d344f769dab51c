"""Table tests for corral.units: duration/size parsing and human formatting."""

from __future__ import annotations

import math

import pytest

from corral.units import format_bytes, format_duration, parse_duration, parse_size


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (0, 0.0),
        (1000, 1.0),
        (1600, 1.6),
        (250.5, 0.2505),
        ("1000", 1.0),
        ("0", 0.0),
        ("500ms", 0.5),
        ("15s", 15.0),
        ("1.5s", 1.5),
        (".5s", 0.5),
        ("15m", 900.0),
        ("2h", 7200.0),
        ("1d", 86400.0),
        ("1h30m", 5400.0),
        ("1m 30s", 90.0),
        ("5 s", 5.0),
        ("  10s  ", 10.0),
        ("10S", 10.0),
        ("2H", 7200.0),
    ],
)
def test_parse_duration(value: object, seconds: float) -> None:
    assert parse_duration(value) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "value",
    ["", "   ", "5 parsecs", "s", "ms", "5x", "1.2.3s", "-5s", -1, math.inf, math.nan, True, None, [5], {"s": 1}, "5s garbage"],
)
def test_parse_duration_rejects(value: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(value)


@pytest.mark.parametrize(
    ("value", "size"),
    [
        (0, 0),
        (1024, 1024),
        (2048.0, 2048),
        ("100", 100),
        ("100B", 100),
        ("512K", 512 * 1024),
        ("100KB", 100 * 1024),
        ("10M", 10 * 1024**2),
        ("10MB", 10 * 1024**2),
        ("10mb", 10 * 1024**2),
        ("1G", 1024**3),
        ("2GB", 2 * 1024**3),
        ("1.5GB", int(1.5 * 1024**3)),
        ("1GiB", 1024**3),
        ("1 TB", 1024**4),
        (" 300M ", 300 * 1024**2),
    ],
)
def test_parse_size(value: object, size: int) -> None:
    assert parse_size(value) == size


@pytest.mark.parametrize("value", ["", "lots", "10 parsecs", "10XB", "-1MB", -1, 1.5, True, None, ["1G"]])
def test_parse_size_rejects(value: object) -> None:
    with pytest.raises(ValueError):
        parse_size(value)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (-3, "0s"),
        (0.5, "500ms"),
        (1, "1s"),
        (3.9, "3s"),
        (59, "59s"),
        (60, "1m"),
        (240, "4m"),
        (3599, "59m"),
        (3600, "1h"),
        (7300, "2h"),
        (86399, "23h"),
        (86400, "1d"),
        (5 * 86400 + 7, "5d"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "0 B"),
        (512, "512 B"),
        (1023, "1023 B"),
        (1024, "1.0 KB"),
        (1536, "1.5 KB"),
        (int(12.3 * 1024**2), "12.3 MB"),
        (2 * 1024**3, "2.0 GB"),
        (3 * 1024**4, "3.0 TB"),
        (5000 * 1024**4, "5000.0 TB"),
    ],
)
def test_format_bytes(n: int, text: str) -> None:
    assert format_bytes(n) == text


def test_round_trips() -> None:
    assert parse_size(format_bytes(2 * 1024**3).replace(" ", "")) == 2 * 1024**3
    assert parse_duration(format_duration(900)) == 900
