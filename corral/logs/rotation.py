"""Log rotation as a pure policy: when to rotate, what rotated files are called, what to prune.

No IO here except :func:`rotated_files` (one ``listdir``); the writer that renames, reopens,
compresses and deletes is :mod:`corral.logs.files`.

* **When**: :meth:`RotationPolicy.should_rotate` is true when the file is not empty and either the
  next write would take it past ``max_size`` or a time boundary of ``schedule`` has passed since
  the file was opened (``opened_at``).  A file is never rotated while empty.
* **Schedules** are 5-field cron expressions (minute hour day-of-month month day-of-week, with
  ``*``, lists, ranges, steps and month/day names; when both day fields are restricted either
  may match, as in Vixie cron) in local time; ``"hourly"``, ``"daily"``, ``"weekly"``,
  ``"monthly"`` and ``@hourly``-style names are shorthands.
* **Names**: ``app-out.log`` rotated at 05:40:00 becomes ``app-out__2026-11-22_05-40-00.log``
  (pm2-logrotate's pattern); a second rotation within the same second gets ``.1``, ``.2`` ...
  before the extension; compressed files end in ``.gz``.
* **Pruning**: keep the ``retain`` newest rotated files (None keeps all) and drop any older than
  ``max_age`` seconds (by the rotation time in its name).
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from functools import lru_cache

TYPE_CHECKING = False
if TYPE_CHECKING:
    from corral.config.spec import AppSpec

__all__ = ["CronSchedule", "RotationPolicy", "RotatedFile", "parse_schedule", "rotated_name",
           "rotated_files", "to_prune"]

SHORTHANDS = {
    "hourly": "0 * * * *", "daily": "0 0 * * *", "midnight": "0 0 * * *",
    "weekly": "0 0 * * 0", "monthly": "0 0 1 * *", "yearly": "0 0 1 1 *", "annually": "0 0 1 1 *",
}
_MONTHS = {m: i + 1 for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split())}
_DAYS = {d: i for i, d in enumerate("sun mon tue wed thu fri sat".split())}
# (low, high, names) for minute, hour, day of month, month, day of week
_FIELDS = ((0, 59, {}), (0, 23, {}), (1, 31, {}), (1, 12, _MONTHS), (0, 7, _DAYS))
_STAMP = "%Y-%m-%d_%H-%M-%S"
_SEARCH_LIMIT_DAYS = 366 * 5


# -- schedules ------------------------------------------------------------------------------------
def _parse_value(text: str, names: dict[str, int]) -> int:
    value = names.get(text.lower()) if names else None
    if value is None:
        if not text.isdigit():
            raise ValueError(f'"{text}" is not a number')
        value = int(text)
    return value


def _parse_field(text: str, low: int, high: int, names: dict[str, int]) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        rng, _, step_text = part.partition("/")
        step = int(step_text) if step_text.isdigit() and int(step_text) > 0 else None
        if step_text and step is None:
            raise ValueError(f'"{part}": the step must be a number > 0')
        if rng == "*":
            first, last = low, high
        elif "-" in rng:
            a, b = rng.split("-", 1)
            first, last = _parse_value(a, names), _parse_value(b, names)
        else:
            first = last = _parse_value(rng, names)
            if step is not None:
                last = high
        if not (low <= first <= high and low <= last <= high and first <= last):
            raise ValueError(f'"{part}" is out of range {low}-{high}')
        values.update(range(first, last + 1, step or 1))
    return frozenset(values)


@dataclass(frozen=True)
class CronSchedule:
    """A 5-field cron expression, matched against local time to the minute."""

    expression: str
    minutes: frozenset[int] = field(compare=False, repr=False)
    hours: frozenset[int] = field(compare=False, repr=False)
    days: frozenset[int] = field(compare=False, repr=False)
    months: frozenset[int] = field(compare=False, repr=False)
    weekdays: frozenset[int] = field(compare=False, repr=False)  # 0 = Sunday
    any_day: bool = field(compare=False, repr=False)
    any_weekday: bool = field(compare=False, repr=False)

    def _day_matches(self, day: int, month: int, year: int) -> bool:
        weekday = (_weekday(year, month, day) + 1) % 7
        in_days, in_weekdays = day in self.days, weekday in self.weekdays
        if self.any_day or self.any_weekday:
            return in_days and in_weekdays
        return in_days or in_weekdays

    def next_after(self, after: float) -> float:
        """The first matching minute strictly after ``after`` (unix seconds), as unix seconds."""
        return _next_after(self, int(after // 60) * 60)


def _weekday(year: int, month: int, day: int) -> int:
    """Monday = 0, as ``datetime.weekday``."""
    import datetime

    return datetime.date(year, month, day).weekday()


@lru_cache(maxsize=256)
def _next_after(cron: CronSchedule, minute_start: float) -> float:
    import datetime

    t = datetime.datetime.fromtimestamp(minute_start) + datetime.timedelta(minutes=1)
    limit = t + datetime.timedelta(days=_SEARCH_LIMIT_DAYS)
    while t < limit:
        if t.month not in cron.months:
            t = (t.replace(day=1, hour=0, minute=0) + datetime.timedelta(days=32)).replace(day=1)
            continue
        if not cron._day_matches(t.day, t.month, t.year):
            t = t.replace(hour=0, minute=0) + datetime.timedelta(days=1)
            continue
        if t.hour not in cron.hours:
            t = t.replace(minute=0) + datetime.timedelta(hours=1)
            continue
        if t.minute not in cron.minutes:
            t += datetime.timedelta(minutes=1)
            continue
        return t.timestamp()
    return float("inf")  # e.g. "0 0 31 2 *": never


def parse_schedule(text: str) -> CronSchedule:
    """``"daily"``, ``"@hourly"`` or a 5-field cron expression; ValueError says what is wrong."""
    if not isinstance(text, str):
        raise ValueError("not a schedule")
    expression = SHORTHANDS.get(text.strip().lower().lstrip("@"), text.strip())
    parts = expression.split()
    if len(parts) != 5:
        raise ValueError(f"a cron expression has 5 fields, this one has {len(parts)}")
    sets = [_parse_field(p, lo, hi, names) for p, (lo, hi, names) in zip(parts, _FIELDS)]
    weekdays = frozenset(d % 7 for d in sets[4])
    return CronSchedule(expression, sets[0], sets[1], sets[2], sets[3], weekdays,
                        any_day=parts[2] == "*", any_weekday=parts[4] == "*")


# -- the policy ----------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class RotationPolicy:
    """When to rotate and what to keep (see the module docstring); ``max_size`` 0 = no size limit.

    No defaults here: the values come from the app's spec, whose defaults are declared once,
    in ``corral.config.fields``.
    """

    max_size: int
    schedule: CronSchedule | None
    retain: int | None
    max_age: float | None
    compress: bool

    @classmethod
    def from_spec(cls, spec: AppSpec) -> "RotationPolicy":
        return cls(
            max_size=spec.log_max_size,
            schedule=parse_schedule(spec.log_rotate) if spec.log_rotate else None,
            retain=spec.log_retain,
            max_age=spec.log_max_age,
            compress=spec.log_compress,
        )

    def should_rotate(self, size: int, opened_at: float, now: float, incoming: int = 0) -> bool:
        """True when a file of ``size`` bytes, opened at ``opened_at``, must be rotated before
        ``incoming`` more bytes are written at ``now``."""
        if size <= 0:
            return False
        if self.max_size and size + incoming > self.max_size:
            return True
        return self.schedule is not None and now >= self.schedule.next_after(opened_at)


# -- names ----------------------------------------------------------------------------------------
@dataclass(frozen=True, order=True)
class RotatedFile:
    """A rotated file of one log: sorts oldest first."""

    rotated_at: float
    serial: int
    path: str = field(compare=False)


def rotated_name(path: str, now: float, taken: set[str] | frozenset[str] = frozenset()) -> str:
    """The path ``path`` gets when rotated at ``now``; ``taken`` holds the file names (no folder)
    already used, with or without ``.gz``."""
    root, ext = os.path.splitext(path)
    base = os.path.basename(root)
    stamp = time.strftime(_STAMP, time.localtime(now))
    serial = 0
    while True:
        name = f"{base}__{stamp}{f'.{serial}' if serial else ''}{ext}"
        if name not in taken and name + ".gz" not in taken:
            return os.path.join(os.path.dirname(path), name)
        serial += 1


def _pattern(path: str) -> re.Pattern[str]:
    root, ext = os.path.splitext(os.path.basename(path))
    return re.compile(rf"^{re.escape(root)}__(\d{{4}}-\d\d-\d\d_\d\d-\d\d-\d\d)(?:\.(\d+))?"
                      rf"{re.escape(ext)}(?:\.gz)?$")


def rotated_files(path: str, names: list[str] | None = None) -> list[RotatedFile]:
    """The rotated files of the log at ``path``, oldest first (``names``: the folder's listing,
    read when not given)."""
    folder = os.path.dirname(path) or "."
    if names is None:
        try:
            names = os.listdir(folder)
        except OSError:
            return []
    pattern = _pattern(path)
    found = []
    for name in names:
        m = pattern.match(name)
        if m is None:
            continue
        when = time.mktime(time.strptime(m.group(1), _STAMP))
        found.append(RotatedFile(when, int(m.group(2) or 0), os.path.join(folder, name)))
    found.sort()
    return found


def to_prune(files: list[RotatedFile], now: float, retain: int | None, max_age: float | None
             ) -> list[RotatedFile]:
    """Which of ``files`` (any order) to delete: beyond the ``retain`` newest, or older than
    ``max_age`` seconds."""
    ordered = sorted(files, reverse=True)  # newest first
    doomed = [] if retain is None else ordered[retain:]
    if max_age is not None:
        doomed += [f for f in ordered[: len(ordered) if retain is None else retain]
                   if now - f.rotated_at > max_age]
    return sorted(doomed)
