"""Log rotation as a pure policy: when to rotate, what rotated files are called, what to prune.

No IO here except :func:`rotated_files` (one ``listdir``); the writer that renames, reopens,
compresses and deletes is :mod:`corral.logs.files`.

* **When**: :meth:`RotationPolicy.should_rotate` is true when the file is not empty and either the
  next write would take it past ``max_size`` or a time boundary of ``schedule`` has passed since
  the file was opened (``opened_at``).  A file is never rotated while empty.
* **Schedules** are 5-field cron expressions (minute hour day-of-month month day-of-week) read
  by ``cronsim``, which follows Debian's cron: when both day fields are restricted either may
  match, and at a daylight-saving change a job at a fixed time runs once (fall back: not again
  in the repeated hour; spring forward: at the first minute after the gap) while an hourly or
  finer one follows the clock (fall back: the repeated hour has its own boundary).  Local time;
  ``"hourly"``, ``"daily"``, ``"weekly"``, ``"monthly"`` and ``@hourly``-style names are
  shorthands.  ``cronsim`` and ``zoneinfo`` are imported only when an app has a schedule.
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
TYPE_CHECKING = False  # typing costs start-up time on the CLI

if TYPE_CHECKING:
    from datetime import tzinfo

TYPE_CHECKING = False
if TYPE_CHECKING:
    from corral.config.spec import AppSpec

__all__ = ["CronSchedule", "RotationPolicy", "RotatedFile", "parse_schedule", "rotated_name",
           "rotated_files", "to_prune"]

SHORTHANDS = {
    "hourly": "0 * * * *", "daily": "0 0 * * *", "midnight": "0 0 * * *",
    "weekly": "0 0 * * 0", "monthly": "0 0 1 * *", "yearly": "0 0 1 1 *", "annually": "0 0 1 1 *",
}
_STAMP = "%Y-%m-%d_%H-%M-%S"


# -- schedules ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CronSchedule:
    """A 5-field cron expression, evaluated by ``cronsim`` in local time (or in ``tz``)."""

    expression: str
    tz: tzinfo | None = field(default=None, compare=False, repr=False)  # None: local time

    def next_after(self, after: float) -> float:
        """The first matching minute strictly after ``after`` (unix seconds), as unix seconds;
        ``inf`` when none comes within cronsim's horizon (50 years)."""
        return _next_after(self.expression, self.tz, int(after // 60) * 60)


@lru_cache(maxsize=256)  # called at every write: the answer only changes when the file is reopened
def _next_after(expression: str, tz: tzinfo | None, minute_start: float) -> float:
    from datetime import datetime

    from cronsim import CronSim

    zone = tz or _local_zone(os.environ.get("TZ"))
    start = datetime.fromtimestamp(minute_start, zone)  # zone None: naive local time, no DST rules
    try:
        return next(CronSim(expression, start)).timestamp()
    except StopIteration:
        return float("inf")


@lru_cache(maxsize=4)
def _local_zone(tz_env: str | None) -> tzinfo | None:
    """Local time as a zoneinfo zone (``TZ``, else ``/etc/localtime``), so a daylight-saving change
    is handled as Debian's cron does; None (naive local time) when neither names a zone file."""
    from zoneinfo import ZoneInfo

    name = (tz_env or "").lstrip(":")
    try:
        if name and not os.path.isabs(name):
            return ZoneInfo(name)
        with open(name or "/etc/localtime", "rb") as f:
            return ZoneInfo.from_file(f, key=name or "localtime")
    except (OSError, ValueError, KeyError):  # KeyError: ZoneInfoNotFoundError
        return None


def parse_schedule(text: str) -> CronSchedule:
    """``"daily"``, ``"@hourly"`` or a 5-field cron expression; ValueError says what is wrong."""
    if not isinstance(text, str):
        raise ValueError("not a schedule")
    parts = SHORTHANDS.get(text.strip().lower().lstrip("@"), text.strip()).split()
    if len(parts) != 5:
        raise ValueError(f"a cron expression has 5 fields, this one has {len(parts)}")
    from datetime import datetime

    from cronsim import CronSim, CronSimError

    expression = " ".join(parts)
    try:
        CronSim(expression, datetime(2000, 1, 1))
    except CronSimError as exc:
        raise ValueError(str(exc).lower()) from None
    return CronSchedule(expression)


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
    def from_spec(cls, spec: AppSpec) -> RotationPolicy:
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
    already used, with or without ``.gz``.  Within one second, the serial is one past the highest
    taken (not the first free one: once the first files of that second are pruned, a new one
    must still sort after those kept, or pruning would take it first)."""
    root, ext = os.path.splitext(path)
    base = os.path.basename(root)
    prefix = f"{base}__{time.strftime(_STAMP, time.localtime(now))}"
    serial = -1
    for name in taken:
        name = name[:-3] if name.endswith(".gz") else name
        if not name.startswith(prefix) or not name.endswith(ext):
            continue
        middle = name[len(prefix): len(name) - len(ext)]
        if middle == "":
            serial = max(serial, 0)
        elif middle[0] == "." and middle[1:].isdigit():
            serial = max(serial, int(middle[1:]))
    serial += 1
    return os.path.join(os.path.dirname(path), f"{prefix}{f'.{serial}' if serial else ''}{ext}")


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
