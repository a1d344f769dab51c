"""Converters for the log settings, and the ecosystem's top-level log defaults.

The fields themselves are declared in :data:`corral.config.fields.FIELDS`; the keys listed in
:data:`APP_DEFAULT_KEYS` may also be given at the top level of an ecosystem file, where they are
defaults for every app (an app's own value wins)::

    log_max_size = "50MB"
    log_compress = true

    [[apps]]
    name = "api"
    ...
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from corral.config import limits
from corral.config.convert import Invalid, render
from corral.units import parse_duration, parse_size

#: Keys that work at the top level of an ecosystem file, as defaults for every app.
APP_DEFAULT_KEYS: tuple[str, ...] = (
    "log_type", "log_date_format", "time", "log_max_line", "log_max_size", "log_rotate",
    "log_retain", "log_max_age", "log_compress", "redact", "redact_keys", "redact_patterns",
)
MIN_LINE = limits.MIN_LINE
MAX_LINE = limits.MAX_LINE


def to_log_type(value: Any) -> str:
    """``"json"`` (one JSON object per line) or ``"raw"`` (PM2 also says ``"text"``)."""
    if isinstance(value, str) and value.strip().lower() in ("json", "raw", "text", "plain"):
        return "json" if value.strip().lower() == "json" else "raw"
    raise Invalid('is not a log type (use "json" or "raw")')


def to_date_format(value: Any) -> str:
    """A moment.js format (``"YYYY-MM-DD HH:mm:ss Z"``) or a strftime one (``"%Y-%m-%d %H:%M:%S"``)."""
    from corral.logs.format import check_date_format

    if isinstance(value, str) and value.strip():
        try:
            check_date_format(value)
        except ValueError:
            pass
        else:
            return value
    raise Invalid('is not a date format (use a moment.js format like "YYYY-MM-DD HH:mm:ss Z" '
                  'or a strftime one like "%Y-%m-%d %H:%M:%S")')


def to_rotate_size(value: Any) -> int:
    """Bytes; 0 or false turns size rotation off."""
    if value is False:
        return 0
    try:
        size = parse_size(value)
    except ValueError:
        raise Invalid('is not a size (try "10MB", "512K" or 0 for no size limit)') from None
    if size > limits.MAX_SIZE:
        raise Invalid(f'is too large a size ({limits.SIZE_HINT}; 0 for no size limit)')
    return size


def to_line_limit(value: Any) -> int:
    """The longest line kept whole, in bytes (1K-16MB)."""
    try:
        size = parse_size(value)
    except ValueError:
        size = -1
    if MIN_LINE <= size <= MAX_LINE:
        return size
    raise Invalid('is not a line limit (use a size from "1K" to "16MB", like "64K")')


def to_schedule(value: Any) -> str | None:
    """``"hourly"``, ``"daily"``, ``"weekly"``, ``"monthly"`` or a 5-field cron expression; false = none."""
    from corral.logs.rotation import parse_schedule

    if value is False:
        return None
    try:
        parse_schedule(value)
    except ValueError as exc:
        raise Invalid(f'is not a rotation schedule ({exc}; use "daily", "hourly" or a cron '
                      'expression like "0 0 * * *")') from None
    return str(value).strip()


def to_retain(value: Any) -> int | None:
    """How many rotated files to keep: a whole number, or ``"all"`` (kept as None)."""
    if isinstance(value, str) and value.strip().lower() in ("all", "unlimited"):
        return None
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= limits.MAX_COUNT:
        return value
    raise Invalid(f'is not a number of files (use a whole number from 0 to {limits.MAX_COUNT}, or "all")')


def to_max_age(value: Any) -> float | None:
    """A duration (``"14d"``); false = no age limit."""
    if value is False:
        return None
    try:
        seconds = parse_duration(value)
    except ValueError:
        seconds = 0.0
    if 0 < seconds <= limits.MAX_AGE:
        return seconds
    raise Invalid('is not an age (try "14d", "12h", or false for no age limit; at most "3650d")')


def to_key_list(value: Any) -> list[str]:
    """A list of key names (a single string is a one-element list)."""
    items = [value] if isinstance(value, str) else value
    if isinstance(items, list) and len(items) <= limits.MAX_LIST and \
            all(isinstance(v, str) and v.strip() and len(v) <= 1024 for v in items):
        return [v.strip() for v in items]
    raise Invalid('is not a list of key names (use a list of strings, like ["ssn", "x-session"])')


def to_patterns(value: Any) -> list[str]:
    """A list of regular expressions (Python syntax); group 1, when present, is what is replaced.
    One that backtracks catastrophically is refused (:mod:`corral.config.regexcheck`)."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or len(items) > limits.MAX_LIST or \
            not all(isinstance(v, str) and v and len(v) <= 4096 for v in items):
        raise Invalid('is not a list of regular expressions (use a list of strings, each at most 4096 characters)')
    for i, pattern in enumerate(items):
        try:
            re.compile(pattern)
        except re.error as exc:
            raise Invalid(f"is not a regular expression ({exc})", suffix=f"[{i}]", value=pattern) from None
        except (RecursionError, OverflowError, ValueError):
            raise Invalid("is not a regular expression (nested too deeply or too large)", suffix=f"[{i}]",
                          value=pattern) from None
        from corral.config.regexcheck import backtracking_problem  # only for apps with patterns

        problem = backtracking_problem(pattern)
        if problem is not None:
            raise Invalid(problem, suffix=f"[{i}]", value=pattern)
    return list(items)


def app_defaults(doc: Any, where: str, errors: list[str]) -> dict[str, Any]:
    """The top-level :data:`APP_DEFAULT_KEYS` of a document, as raw values; a bad value adds a
    message to ``errors`` (naming the file and the key)."""
    if not isinstance(doc, Mapping):
        return {}
    from corral.config.fields import FIELD_BY_KEY

    defaults: dict[str, Any] = {}
    for key in APP_DEFAULT_KEYS:
        if key not in doc or doc[key] is None:
            continue
        try:
            FIELD_BY_KEY[key].convert(doc[key])
        except Invalid as exc:
            shown = exc.value if exc.suffix else doc[key]
            errors.append(f"{where}: {key}{exc.suffix}: {render(shown)} {exc.text}")
            continue
        defaults[key] = doc[key]
    return defaults
