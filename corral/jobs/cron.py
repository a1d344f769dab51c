"""Cron expressions for jobs and ``cron_restart``: 5 fields, or 6 with seconds first (as node-cron
and Bree write them), and the ``@hourly``/``@daily``/... shorthands; evaluated by ``cronsim``, which
follows Debian's cron across daylight-saving changes (a time skipped by a spring-forward runs at the
first valid time after it, a time repeated by a fall-back runs once).

``cronsim`` and ``zoneinfo`` load with the first expression (a daemon without jobs never needs them).
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

SHORTHANDS = {
    "yearly": "0 0 1 1 *", "annually": "0 0 1 1 *", "monthly": "0 0 1 * *", "weekly": "0 0 * * 0",
    "daily": "0 0 * * *", "midnight": "0 0 * * *", "hourly": "0 * * * *",
}


def normalize(expression: Any) -> str:
    """The expression as cronsim reads it (a shorthand expanded); ValueError says what is wrong."""
    if not isinstance(expression, str) or not expression.strip():
        raise ValueError('is not a cron expression (5 fields like "*/5 * * * *", 6 with seconds first, or @hourly)')
    text = expression.strip()
    if text.startswith("@"):
        if text[1:].lower() not in SHORTHANDS:
            raise ValueError(f"is not a cron shorthand (known: {', '.join('@' + k for k in SHORTHANDS)})")
        return SHORTHANDS[text[1:].lower()]
    parts = text.split()
    if len(parts) not in (5, 6):
        raise ValueError(f"is not a cron expression: it has {len(parts)} fields (5, or 6 with seconds first)")
    from datetime import datetime

    from cronsim import CronSim, CronSimError

    expression = " ".join(parts)
    try:
        CronSim(expression, datetime(2000, 1, 1))
    except CronSimError as exc:
        raise ValueError(f"is not a valid cron expression ({str(exc).lower().rstrip('.')})") from None
    return expression


def zone(name: str | None) -> Any:
    """The tzinfo of ``name`` (an IANA name), or local time (``TZ``, else /etc/localtime) for None;
    ValueError for an unknown name."""
    if name:
        from zoneinfo import ZoneInfo

        try:
            return ZoneInfo(name)
        except (ValueError, KeyError, OSError):  # KeyError: ZoneInfoNotFoundError
            raise ValueError("is not a time zone (an IANA name like \"Europe/Berlin\" or \"UTC\")") from None
    return _local(os.environ.get("TZ"))


@lru_cache(maxsize=4)
def _local(tz_env: str | None) -> Any:
    from zoneinfo import ZoneInfo

    name = (tz_env or "").lstrip(":")
    try:
        if name and not os.path.isabs(name):
            return ZoneInfo(name)
        with open(name or "/etc/localtime", "rb") as f:
            return ZoneInfo.from_file(f, key=name or "localtime")
    except (OSError, ValueError, KeyError):

        from datetime import timezone

        return timezone.utc  # noqa: UP017 - datetime loads only here, when no zone can be read


def next_after(expression: str, after: float, tz: Any = None) -> float | None:
    """The first time matching ``expression`` strictly after ``after`` (unix seconds, wall time),
    or None when none comes (cronsim looks 50 years ahead)."""
    from datetime import datetime

    from cronsim import CronSim

    zone_info = tz if tz is not None else zone(None)
    seconds = len(expression.split()) == 6
    start = int(after) if seconds else int(after // 60) * 60
    try:
        when = next(CronSim(expression, datetime.fromtimestamp(start, zone_info))).timestamp()
    except StopIteration:
        return None
    return when if when > after else next_after(expression, when, zone_info)
