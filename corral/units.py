"""Human units: durations and byte sizes, parsed from config and formatted for output.

This module owns the unit grammar shared by the config loader and the CLI:

* durations: numbers are milliseconds (as in PM2); strings carry a unit
  (``"500ms"``, ``"15s"``, ``"15m"``, ``"2h"``, ``"1d"``, ``"1.5s"``, compounds
  such as ``"1h30m"``); a bare numeric string is milliseconds too;
* sizes: numbers are bytes; strings use base-1024 suffixes (``"512K"``,
  ``"10MB"``, ``"1.5GB"``, ``"1GiB"``); a bare numeric string is bytes.

The parsers raise a plain :class:`ValueError` (and nothing else, whatever the input: NaN,
infinity and 400-digit numbers included); callers format the message and apply their bounds.
"""

from __future__ import annotations

import math
import re

_DURATION_UNITS: dict[str, float] = {
    "ms": 0.001,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
}
_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"
_DURATION_PART = re.compile(rf"\s*({_NUMBER})\s*(ms|s|m|h|d)", re.IGNORECASE)
_BARE_NUMBER = re.compile(rf"^{_NUMBER}$")

_SIZE_UNITS: dict[str, int] = {
    "": 1,
    "b": 1,
    "k": 1024,
    "kb": 1024,
    "kib": 1024,
    "m": 1024**2,
    "mb": 1024**2,
    "mib": 1024**2,
    "g": 1024**3,
    "gb": 1024**3,
    "gib": 1024**3,
    "t": 1024**4,
    "tb": 1024**4,
    "tib": 1024**4,
}
_SIZE = re.compile(rf"^({_NUMBER})\s*([a-z]*)$", re.IGNORECASE)


def _finite_non_negative(number: float) -> float:
    if math.isnan(number) or math.isinf(number) or number < 0:
        raise ValueError("out of range")
    return number


def _float(value: object) -> float:
    """``float(value)`` for a number or a numeric string, finite and >= 0 (ValueError otherwise)."""
    try:
        return _finite_non_negative(float(value))  # type: ignore[arg-type]
    except OverflowError:  # an int too large for a float
        raise ValueError("out of range") from None


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def parse_duration(value: object) -> float:
    """Return ``value`` as seconds; numbers and bare numeric strings are milliseconds."""
    if _is_number(value):
        return _float(value) / 1000.0
    if not isinstance(value, str):
        raise ValueError("not a duration")  # noqa: TRY004 - one error type for callers
    text = value.strip()
    if _BARE_NUMBER.match(text):
        return _float(text) / 1000.0
    total = 0.0
    position = 0
    while position < len(text):
        match = _DURATION_PART.match(text, position)
        if match is None:
            raise ValueError("not a duration")
        total += _float(match.group(1)) * _DURATION_UNITS[match.group(2).lower()]
        position = match.end()
    if position == 0:
        raise ValueError("empty duration")
    return _finite_non_negative(total)


def parse_size(value: object) -> int:
    """Return ``value`` as bytes; numbers are bytes, suffixes are base 1024."""
    if _is_number(value):
        number = _float(value)
        if number != int(number):
            raise ValueError("fractional bytes")
        return int(number)
    if not isinstance(value, str):
        raise ValueError("not a size")  # noqa: TRY004 - one error type for callers
    match = _SIZE.match(value.strip())
    if match is None:
        raise ValueError("not a size")
    unit = _SIZE_UNITS.get(match.group(2).lower())
    if unit is None:
        raise ValueError("unknown size unit")
    return round(_finite_non_negative(_float(match.group(1)) * unit))


def format_duration(seconds: float) -> str:
    """Compact human duration, truncated to its largest unit: ``3s``, ``4m``, ``2h``, ``5d``.

    Under one second the value is shown in milliseconds (``500ms``); negative
    values (clock skew) are shown as ``0s``.
    """
    if math.isnan(seconds) or seconds <= 0:
        return "0s"
    if seconds < 1:
        return f"{int(seconds * 1000)}ms"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def format_bytes(n: float) -> str:
    """Human size in base 1024 with one decimal: ``512 B``, ``1.0 KB``, ``12.3 MB``."""
    if n < 1024:
        return f"{int(n)} B"
    value = float(n)
    for unit in ("KB", "MB", "GB", "TB"):
        value /= 1024
        if value < 1024 or unit == "TB":
            break
    return f"{value:.1f} {unit}"
