"""The pure job schedule (corral.jobs.schedule), transition by transition on a ManualClock."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from corral.clock import ManualClock
from corral.jobs import cron
from corral.jobs.schedule import Run, Schedule, Skipped, Stop, Trigger

BERLIN = ZoneInfo("Europe/Berlin")


def wall(*args: int, tz: ZoneInfo = BERLIN) -> float:
    return datetime(*args, tzinfo=tz).timestamp()


class Driver:
    """A schedule on a ManualClock: ``advance`` fires every due time, earliest first."""

    def __init__(self, start: float) -> None:
        self.clock = ManualClock(wall=start)
        self.schedule = Schedule()
        self.log: list[tuple[float, str, object]] = []

    def load(self, trigger: Trigger, name: str = "job", last_slot: float | None = None, starting: bool = True) -> None:
        self.record(name, self.schedule.load(name, trigger, self.clock.now(), last_slot, 0.0, starting))

    def record(self, name: str, actions: list) -> None:
        self.log.extend((self.clock.now(), name, a) for a in actions)

    def advance(self, seconds: float) -> None:
        target = self.clock.now() + seconds
        while (due := self.schedule.next_due()) is not None and due[0] <= target:
            self.clock.advance(max(0.0, due[0] - self.clock.now()))
            self.record(due[1], self.schedule.fire(due[1], self.clock.now(), 0.0))
        self.clock.advance(target - self.clock.now())

    def exit(self, name: str = "job", ok: bool = True) -> None:
        self.record(name, self.schedule.exited(name, ok, self.clock.now()))

    def runs(self) -> list[tuple[str, str]]:
        return [(datetime.fromtimestamp(t, BERLIN).strftime("%m-%d %H:%M:%S"), a.trigger)
                for t, _, a in self.log if isinstance(a, Run)]


def test_daily_0230_runs_once_on_the_spring_forward_day_and_once_on_the_fall_back_day() -> None:
    for day, start in (("03-29", wall(2026, 3, 28, 12, 0)), ("10-25", wall(2026, 10, 24, 12, 0))):
        d = Driver(start)
        d.load(Trigger(cron=cron.normalize("30 2 * * *"), timezone="Europe/Berlin"), starting=False)
        for _ in range(48 * 4):  # two days, fifteen minutes at a time, every run ends at once
            d.advance(900)
            if d.log and isinstance(d.log[-1][2], Run):
                d.exit()
        runs_on_day = [r for r in d.runs() if r[0].startswith(day)]
        assert len(runs_on_day) == 1, d.runs()
    # spring forward: 02:30 does not exist on 29 March; Debian's cron runs it at 03:00
    d = Driver(wall(2026, 3, 28, 12, 0))
    d.load(Trigger(cron="30 2 * * *", timezone="Europe/Berlin"), starting=False)
    d.advance(86400)
    assert d.runs() == [("03-29 03:00:00", "cron")]


def test_fall_back_runs_0230_once_not_at_both_0230s() -> None:
    d = Driver(wall(2026, 10, 25, 0, 0))
    d.load(Trigger(cron="30 2 * * *", timezone="Europe/Berlin"), starting=False)
    d.advance(6 * 3600)
    assert d.runs() == [("10-25 02:30:00", "cron")]
    first_0230 = d.log[0][0]
    assert first_0230 == wall(2026, 10, 25, 0, 30, tz=ZoneInfo("UTC"))  # the first 02:30 (CEST)


def test_six_fields_every_two_seconds_has_no_drift() -> None:
    d = Driver(wall(2026, 1, 1, 0, 0, 1))
    d.load(Trigger(cron=cron.normalize("*/2 * * * * *")), starting=False)
    for _ in range(30):
        d.advance(1)
        if d.log and isinstance(d.log[-1][2], Run):
            d.exit()
    times = [t for t, _, a in d.log if isinstance(a, Run)]
    assert len(times) == 15
    assert all(int(t) % 2 == 0 and t == int(t) for t in times)


def test_overlap_skip_never_runs_twice_and_says_which_triggers_were_skipped() -> None:
    d = Driver(wall(2026, 1, 1, 0, 0, 0))
    d.load(Trigger(interval=1.0), starting=False)
    d.advance(1)  # runs; it takes 3 s
    d.advance(1)
    d.advance(1)
    assert [type(a).__name__ for _, _, a in d.log] == ["Run", "Skipped", "Skipped"]
    assert d.log[1][2] == Skipped("interval", "still running (overlap = skip)")
    d.exit()
    d.advance(1)
    assert isinstance(d.log[-1][2], Run)


def test_overlap_queue_runs_after_the_current_one() -> None:
    d = Driver(wall(2026, 1, 1))
    d.load(Trigger(interval=10.0, overlap="queue"), starting=False)
    d.advance(10)
    d.advance(10)
    assert [type(a).__name__ for _, _, a in d.log] == ["Run"]
    d.exit()
    assert d.log[-1][2] == Run("queued")


def test_overlap_replace_stops_the_running_one_then_runs() -> None:
    d = Driver(wall(2026, 1, 1))
    d.load(Trigger(interval=10.0, overlap="replace"), starting=False)
    d.advance(10)
    d.advance(10)
    assert d.log[-1][2] == Stop()
    d.exit(ok=False)  # the replaced run ends by a signal: no retry for it
    assert d.log[-1][2] == Run("interval")


def test_retries_back_off_exponentially_then_give_up() -> None:
    d = Driver(wall(2026, 1, 1))
    d.load(Trigger(interval=3600.0, retries=3, backoff=2.0), starting=False)
    d.advance(3600)
    start = d.clock.now()
    for _ in range(4):
        d.exit(ok=False)
        d.advance(100)
    retries = [(t - start, a.attempt) for t, _, a in d.log if isinstance(a, Run) and a.trigger == "retry"]
    assert retries == [(2.0, 1), (100 + 4.0, 2), (200 + 8.0, 3)]  # 2 s, then 4 s, then 8 s after each failure
    assert d.schedule.states["job"].retry_at is None  # three retries, then it gives up


def test_catch_up_runs_once_at_start_not_once_per_missed_time() -> None:
    last = wall(2026, 1, 1, 10, 0)
    d = Driver(wall(2026, 1, 1, 15, 30))  # down for five and a half hours of an hourly job
    d.load(Trigger(cron="0 * * * *", catch_up=True), last_slot=last, starting=True)
    assert [a for _, _, a in d.log] == [Run("catch_up")]
    d2 = Driver(wall(2026, 1, 1, 15, 30))
    d2.load(Trigger(cron="0 * * * *"), last_slot=last, starting=True)
    assert d2.log == []
    d3 = Driver(wall(2026, 1, 1, 10, 30))  # nothing missed
    d3.load(Trigger(cron="0 * * * *", catch_up=True), last_slot=last, starting=True)
    assert d3.log == []


def test_at_runs_once_and_never_again_after_a_restart() -> None:
    at = wall(2026, 1, 1, 12, 0)
    d = Driver(wall(2026, 1, 1, 11, 0))
    d.load(Trigger(at=at), starting=False)
    d.advance(7200)
    assert d.runs() == [("01-01 12:00:00", "at")]
    assert d.schedule.next_due() is None
    again = Driver(wall(2026, 1, 1, 11, 0))
    again.load(Trigger(at=at), last_slot=at, starting=True)
    again.advance(7200)
    assert again.runs() == []


def test_jitter_delays_within_its_bound_without_drift() -> None:
    s = Schedule()
    s.load("j", Trigger(interval=60.0, jitter=10.0), 1000.0, None, 0.5, False)
    assert s.next_due() == (1065.0, "j")
    s.fire("j", 1065.0, 0.9)
    assert s.states["j"].slot == 1120.0 and s.next_due() == (1129.0, "j")


def test_paused_jobs_skip_their_triggers() -> None:
    d = Driver(wall(2026, 1, 1))
    d.load(Trigger(interval=10.0), starting=False)
    d.schedule.pause("job", True)
    d.advance(10)
    assert d.log[-1][2] == Skipped("interval", "paused")


def test_on_start_runs_once_when_loaded() -> None:
    d = Driver(wall(2026, 1, 1))
    d.load(Trigger(on_start=True))
    assert [a for _, _, a in d.log] == [Run("start")]
    d.exit()
    d.advance(86400)
    assert len(d.log) == 1


@pytest.mark.parametrize("bad", ["61 * * * *", "* * *", "@often", ""])
def test_bad_cron_expressions_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        cron.normalize(bad)


def test_an_at_time_that_passed_while_down_runs_once_with_catch_up_only() -> None:
    at = wall(2026, 1, 1, 12, 0)
    d = Driver(wall(2026, 1, 1, 13, 0))
    d.load(Trigger(at=at, catch_up=True), last_slot=None, starting=True)
    assert [a for _, _, a in d.log] == [Run("catch_up")]
    assert d.schedule.states["job"].last_slot == d.clock.now()  # kept: the next daemon does not run it again
    again = Driver(wall(2026, 1, 1, 14, 0))
    again.load(Trigger(at=at, catch_up=True), last_slot=d.schedule.states["job"].last_slot, starting=True)
    assert again.log == []
    plain = Driver(wall(2026, 1, 1, 13, 0))
    plain.load(Trigger(at=at), last_slot=None, starting=True)
    assert plain.log == []
