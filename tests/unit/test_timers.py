"""The clock and the timer service, on a ManualClock: no sleeps, time moves when the test says."""

from __future__ import annotations

import asyncio
import time

import pytest

from corral.clock import ManualClock, SystemClock
from corral.daemon.timers import loop_timers, manual_timers


def test_manual_clock_moves_wall_and_monotonic_together_and_only_when_advanced() -> None:
    clock = ManualClock(start=5.0, wall=1000.0)
    assert (clock.monotonic(), clock.now()) == (5.0, 1000.0)
    clock.advance(2.5)
    assert (clock.monotonic(), clock.now()) == (7.5, 1002.5)
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_timers_fire_in_deadline_order_with_the_clock_at_each_deadline() -> None:
    clock = ManualClock(start=100.0)
    timers = manual_timers(clock)
    fired: list[tuple[float, str]] = []
    timers.after(3, lambda: fired.append((clock.monotonic(), "c")))
    timers.at(101.0, lambda: fired.append((clock.monotonic(), "a")))
    timers.after(2, lambda: fired.append((clock.monotonic(), "b")))
    clock.advance(2.5)
    assert fired == [(101.0, "a"), (102.0, "b")]
    clock.advance(10)
    assert fired[-1] == (103.0, "c")
    assert clock.monotonic() == 112.5


def test_timers_due_at_the_same_moment_fire_in_the_order_they_were_set() -> None:
    clock = ManualClock()
    timers = manual_timers(clock)
    order: list[int] = []
    for i in range(5):
        timers.after(1, lambda i=i: order.append(i))
    clock.advance(1)
    assert order == [0, 1, 2, 3, 4]


def test_a_cancelled_timer_never_fires_and_cancel_is_idempotent() -> None:
    clock = ManualClock()
    timers = manual_timers(clock)
    fired: list[str] = []
    handle = timers.after(1, lambda: fired.append("x"))
    handle.cancel()
    handle.cancel()
    clock.advance(5)
    assert fired == [] and handle.cancelled and clock.pending() == 0


def test_a_timer_set_by_a_timer_fires_within_the_same_advance_when_due() -> None:
    clock = ManualClock()
    timers = manual_timers(clock)
    fired: list[float] = []

    def first() -> None:
        fired.append(clock.monotonic())
        timers.after(1, lambda: fired.append(clock.monotonic()))

    timers.after(1, first)
    clock.advance(3)
    assert fired == [1.0, 2.0]


def test_a_deadline_in_the_past_fires_at_the_next_advance() -> None:
    clock = ManualClock(start=10.0)
    timers = manual_timers(clock)
    fired: list[float] = []
    timers.at(3.0, lambda: fired.append(clock.monotonic()))
    assert fired == []
    clock.advance(0)
    assert fired == [10.0]


def test_every_repeats_at_its_interval_until_cancelled() -> None:
    clock = ManualClock()
    timers = manual_timers(clock)
    fired: list[float] = []
    handle = timers.every(2, lambda: fired.append(clock.monotonic()))
    clock.advance(7)
    assert fired == [2.0, 4.0, 6.0]
    handle.cancel()
    clock.advance(10)
    assert fired == [2.0, 4.0, 6.0] and clock.pending() == 0


def test_every_can_be_cancelled_from_its_own_callback() -> None:
    clock = ManualClock()
    timers = manual_timers(clock)
    fired: list[float] = []

    def tick() -> None:
        fired.append(clock.monotonic())
        if len(fired) == 2:
            handle.cancel()

    handle = timers.every(1, tick)
    clock.advance(10)
    assert fired == [1.0, 2.0]


def test_every_with_jitter_stays_within_the_jitter_of_each_slot_and_never_drifts() -> None:
    clock = ManualClock()
    draws = iter([0.0, 0.99, 0.5, 0.25] * 30)
    timers = manual_timers(clock, rand=lambda: next(draws))
    fired: list[float] = []
    timers.every(10, lambda: fired.append(clock.monotonic()), jitter=2)
    clock.advance(1003)
    assert len(fired) == 100
    for n, at in enumerate(fired, start=1):
        assert n * 10 <= at <= n * 10 + 2  # bounded by the jitter, around a slot that never moves
    assert fired[:4] == pytest.approx([10.0, 21.98, 31.0, 40.5])


def test_every_keeps_its_schedule_when_the_callback_fails() -> None:
    clock = ManualClock()
    timers = manual_timers(clock)
    calls: list[float] = []

    def failing() -> None:
        calls.append(clock.monotonic())
        raise RuntimeError("boom")

    timers.every(1, failing)
    for _ in range(3):
        with pytest.raises(RuntimeError):
            clock.advance(1)
    assert calls == [1.0, 2.0, 3.0]


def test_every_refuses_a_zero_interval() -> None:
    with pytest.raises(ValueError):
        manual_timers(ManualClock()).every(0, lambda: None)


def test_a_timer_fires_once_and_a_late_cancel_is_harmless() -> None:
    clock = ManualClock()
    timers = manual_timers(clock)
    fired: list[int] = []
    handle = timers.after(1, lambda: fired.append(1))
    clock.advance(5)
    handle.cancel()
    clock.advance(5)
    assert fired == [1]


def test_the_daemon_timers_run_on_the_asyncio_loop() -> None:
    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        timers = loop_timers(loop, SystemClock())
        three_ticks = loop.create_future()
        fired: list[str] = []

        def tick() -> None:
            fired.append("tick")
            if fired.count("tick") == 3 and not three_ticks.done():
                ticks.cancel()  # here, not after the await: on a loaded machine a 4th may be due by then
                three_ticks.set_result(None)

        timers.after(0.02, lambda: fired.append("late"))
        timers.after(0.01, lambda: fired.append("early"))
        timers.after(0.01, lambda: fired.append("cancelled")).cancel()
        ticks = timers.every(0.005, tick)
        await asyncio.wait_for(three_ticks, 10)
        done = loop.create_future()
        timers.after(0.03, lambda: done.set_result(None))
        await asyncio.wait_for(done, 10)
        return fired

    fired = asyncio.run(main())
    assert [f for f in fired if f != "tick"] == ["early", "late"]
    assert fired.count("tick") == 3  # none after cancel()


def test_the_system_clock_reads_the_real_clocks() -> None:
    clock = SystemClock()
    assert abs(clock.now() - time.time()) < 1 and abs(clock.monotonic() - time.monotonic()) < 1
