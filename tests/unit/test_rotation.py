"""The rotation policy: when to rotate, cron schedules, rotated names, what to prune."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from datetime import datetime, UTC
from zoneinfo import ZoneInfo

import pytest

from corral.config.spec import AppSpec
from corral.logs.rotation import (
    CronSchedule, RotatedFile, RotationPolicy, parse_schedule, rotated_files, rotated_name, to_prune,
)


def ts(text: str) -> float:
    """Local time ``YYYY-MM-DD HH:MM[:SS]`` as unix seconds."""
    return datetime.fromisoformat(text).timestamp()


def local(t: float) -> str:
    return datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M")


# -- size and time ------------------------------------------------------------------------------
@pytest.mark.parametrize(("size", "incoming", "expected"), [
    (0, 10**9, False),         # an empty file is never rotated, even for one huge chunk
    (999, 1, False),           # exactly at the limit after the write: not yet
    (999, 2, True),            # past the limit
    (1000, 0, False),
    (1001, 0, True),
])
def test_size(size: int, incoming: int, expected: bool) -> None:
    policy = policy_of(max_size=1000)
    assert policy.should_rotate(size, opened_at=0.0, now=1.0, incoming=incoming) is expected


def test_size_zero_means_no_size_limit() -> None:
    assert not policy_of(max_size=0).should_rotate(10**12, 0.0, 1.0, 10**9)


def test_daily_rotates_once_midnight_has_passed() -> None:
    policy = policy_of(max_size=0, schedule=parse_schedule("daily"))
    opened = ts("2026-11-22 23:59:30")
    assert not policy.should_rotate(10, opened, ts("2026-11-22 23:59:59"))
    assert policy.should_rotate(10, opened, ts("2026-11-23 00:00:00"))
    assert policy.should_rotate(10, opened, ts("2026-11-25 12:00:00"))  # days later: still due
    assert not policy.should_rotate(0, opened, ts("2026-11-25 12:00:00"))  # but never an empty file


def test_hourly_and_size_together() -> None:
    policy = policy_of(max_size=100, schedule=parse_schedule("@hourly"))
    opened = ts("2026-11-22 10:15")
    assert policy.should_rotate(101, opened, ts("2026-11-22 10:16"))
    assert not policy.should_rotate(50, opened, ts("2026-11-22 10:59:59"))
    assert policy.should_rotate(50, opened, ts("2026-11-22 11:00"))


@pytest.mark.parametrize(("expr", "after", "expected"), [
    ("0 0 * * *", "2026-11-22 05:40", "2026-11-23 00:00"),
    ("*/15 * * * *", "2026-11-22 05:40", "2026-11-22 05:45"),
    ("30 4 * * *", "2026-11-22 04:30", "2026-11-23 04:30"),        # strictly after
    ("0 9-17/4 * * *", "2026-11-22 09:00", "2026-11-22 13:00"),
    ("0 0 1 * *", "2026-11-22 05:40", "2026-12-01 00:00"),
    ("0 0 * * mon", "2026-11-22 05:40", "2026-11-23 00:00"),       # 2026-11-22 is a Sunday
    ("0 0 * * 7", "2026-11-21 05:40", "2026-11-22 00:00"),         # 7 is Sunday too
    ("0 12 1 jan,jul *", "2026-11-22 05:40", "2027-01-01 12:00"),
    ("0 0 13 * fri", "2026-11-22 05:40", "2026-11-27 00:00"),      # day fields: either matches
    ("0 0 29 2 *", "2026-03-01 00:00", "2028-02-29 00:00"),        # leap day
    ("5,10 1 * * *", "2026-11-22 01:07", "2026-11-22 01:10"),
])
def test_cron_next(expr: str, after: str, expected: str) -> None:
    assert local(parse_schedule(expr).next_after(ts(after))) == expected


def test_cron_that_never_fires() -> None:
    # the 1st or the 21st that is also a month's last Monday (always the 22nd or later)
    assert parse_schedule("0 0 */20 * 1L").next_after(ts("2026-01-01 00:00")) == float("inf")


@pytest.mark.parametrize("bad", ["", "* * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "*/0 * * * *",
                                 "a * * * *", "5-1 * * * *", "* * * 13 *", "* * * * 8", "weekly-ish",
                                 "0 0 31 2 *",  # a day no February has: refused, not "never"
                                 "0 0 0 * * *"])  # cronsim's seconds field: not a 5-field expression
def test_bad_schedules(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_schedule(bad)


def policy_of(**changes: object) -> RotationPolicy:
    """A policy with the defaults of an app's spec, with ``changes``."""
    return replace(RotationPolicy.from_spec(AppSpec(name="a", cwd="/")), **changes)


def test_bad_schedule_messages_say_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="^bad hour$"):
        parse_schedule("0 24 * * *")
    with pytest.raises(ValueError, match="^a cron expression has 5 fields, this one has 6$"):
        parse_schedule("0 0 0 * * *")


# -- daylight saving: Debian cron's rules (through cronsim), in an explicit zone ------------------
BERLIN = ZoneInfo("Europe/Berlin")  # 2026-10-25 03:00 CEST -> 02:00 CET; 2026-03-29 02:00 CET -> 03:00 CEST


def berlin(text: str, fold: int = 0) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN, fold=fold).timestamp()


def utc(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%H:%M")


def test_fall_back_hourly_keeps_the_repeated_hour() -> None:
    """02:00-02:59 happens twice; an hourly schedule has a boundary at each 02:00 (and the old
    hand-written parser, counting in naive local time, lost the second one)."""
    hourly = CronSchedule("0 * * * *", BERLIN)
    after, seen = berlin("2026-10-25 01:30"), []
    for _ in range(4):
        after = hourly.next_after(after)
        seen.append(utc(after))
    assert seen == ["00:00", "01:00", "02:00", "03:00"]  # 02:00 CEST, 02:00 CET, 03:00 CET, 04:00 CET
    policy = policy_of(max_size=0, schedule=hourly)
    opened = berlin("2026-10-25 02:10")  # first pass (CEST)
    assert not policy.should_rotate(10, opened, berlin("2026-10-25 02:59:59"))
    assert policy.should_rotate(10, opened, berlin("2026-10-25 02:00", fold=1))  # second pass (CET)


def test_fall_back_fixed_time_runs_once() -> None:
    """A job at a fixed time in the repeated hour runs at its first occurrence only (Debian)."""
    daily = CronSchedule("30 2 * * *", BERLIN)
    first = daily.next_after(berlin("2026-10-25 00:00"))
    assert first == berlin("2026-10-25 02:30")  # CEST
    assert daily.next_after(first) == berlin("2026-10-26 02:30")  # not 02:30 CET the same night


def test_spring_forward_skipped_time_runs_right_after_the_gap() -> None:
    daily = CronSchedule("30 2 * * *", BERLIN)
    assert daily.next_after(berlin("2026-03-29 00:00")) == berlin("2026-03-29 03:00")  # CEST
    hourly = CronSchedule("0 * * * *", BERLIN)
    assert utc(hourly.next_after(berlin("2026-03-29 01:30"))) == "01:00"  # 03:00 CEST, one hour later


def test_named_schedules_and_local_time() -> None:
    assert [parse_schedule(n).expression for n in ("hourly", "daily", "weekly", "monthly")] == [
        "0 * * * *", "0 0 * * *", "0 0 * * 0", "0 0 1 * *"]
    assert parse_schedule("daily").tz is None  # None: the machine's local time


def test_cronsim_is_imported_only_for_a_schedule() -> None:
    code = ("import sys; from corral.logs.rotation import RotationPolicy; from corral.config.spec import AppSpec; "
            "RotationPolicy.from_spec(AppSpec(name='a', cwd='/')); "
            "assert 'cronsim' not in sys.modules and 'zoneinfo' not in sys.modules; "
            "RotationPolicy.from_spec(AppSpec(name='a', cwd='/', log_rotate='daily')).should_rotate(1, 0.0, 1.0); "
            "assert 'cronsim' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_from_spec() -> None:
    spec = AppSpec(name="a", cwd="/", log_max_size=1024, log_rotate="hourly", log_retain=None,
                   log_max_age=3600.0, log_compress=True)
    policy = RotationPolicy.from_spec(spec)
    assert policy.max_size == 1024 and policy.schedule is not None and policy.retain is None
    assert policy.max_age == 3600.0 and policy.compress
    default = RotationPolicy.from_spec(AppSpec(name="a", cwd="/"))
    assert default.max_size == 10 * 1024 * 1024 and default.retain == 10 and default.schedule is None


# -- names and pruning ----------------------------------------------------------------------------
def test_rotated_names_are_unique_and_sort_in_rotation_order(tmp_path: os.PathLike[str]) -> None:
    path = os.path.join(str(tmp_path), "app-out.log")
    now = ts("2026-11-22 05:40:00")
    taken: set[str] = set()
    made = []
    for _ in range(12):  # a dozen rotations within one second
        name = rotated_name(path, now + 0.5, taken)
        assert os.path.dirname(name) == str(tmp_path)
        taken.add(os.path.basename(name))
        made.append(name)
        open(name, "w").close()
    assert os.path.basename(made[0]) == "app-out__2026-11-22_05-40-00.log"
    assert os.path.basename(made[1]) == "app-out__2026-11-22_05-40-00.1.log"
    assert len(set(made)) == 12
    later = rotated_name(path, now + 61, taken)
    os.rename(made[3], made[3] + ".gz")  # compressed files count, and sort the same
    open(later, "w").close()
    open(os.path.join(str(tmp_path), "app-err__2026-11-22_05-40-00.log"), "w").close()  # another log
    found = rotated_files(path)
    assert [f.path for f in found] == [*made[:3], made[3] + ".gz", *made[4:], later]
    assert rotated_name(path, now, {os.path.basename(f.path) for f in found}).endswith(".12.log")


def test_a_name_made_after_pruning_still_sorts_last(tmp_path: os.PathLike[str]) -> None:
    """Three rotations in one second, keeping two: the first is pruned, and the fourth must not take
    its free name (it would sort first and be pruned at once: its lines lost)."""
    path = os.path.join(str(tmp_path), "daemon.log")
    now = ts("2026-11-22 05:40:00")
    kept = {"daemon__2026-11-22_05-40-00.1.log", "daemon__2026-11-22_05-40-00.2.log.gz"}
    name = rotated_name(path, now, kept)
    assert os.path.basename(name) == "daemon__2026-11-22_05-40-00.3.log"
    files = [RotatedFile(now, serial, p) for serial, p in ((1, "a"), (2, "b"), (3, name))]
    assert [f.path for f in to_prune(files, now, retain=2, max_age=None)] == ["a"]


def test_prune_by_count_and_age() -> None:
    files = [RotatedFile(float(t), 0, f"f{t}") for t in (100, 200, 300, 400, 500)]
    assert [f.path for f in to_prune(files, 1000.0, retain=2, max_age=None)] == ["f100", "f200", "f300"]
    assert to_prune(files, 1000.0, retain=None, max_age=None) == []
    assert [f.path for f in to_prune(files, 1000.0, retain=None, max_age=650)] == ["f100", "f200", "f300"]
    assert [f.path for f in to_prune(files, 1000.0, retain=4, max_age=650)] == ["f100", "f200", "f300"]
    assert [f.path for f in to_prune(files, 1000.0, retain=0, max_age=None)] == [f.path for f in files]


def test_rotated_files_of_a_missing_folder() -> None:
    assert rotated_files("/nonexistent/folder/app-out.log") == []
