"""The rolling-reload planner, transition by transition (no processes, no clock)."""

from __future__ import annotations

from corral.lifecycle import rollout as ro
from corral.lifecycle.rollout import Discard, Phase, Retire, StartNew


def begin(n: int = 2, surge: int = 1, wait: float = 10.0) -> ro.Rollout:
    r, actions = ro.start([(i, 100 + i) for i in range(n)], surge, wait, now=0.0)
    assert actions == [StartNew(i) for i in range(min(surge, n))]
    return r


def test_start_plans_the_first_batch_with_a_deadline() -> None:
    r = begin()
    assert r.phase is Phase.STARTING and r.deadline == 10.0 and [p.index for p in r.batch] == [0]
    assert r.todo == ((1, 101),)


def test_a_ready_new_instance_retires_its_old_one() -> None:
    r, _ = ro.step(begin(), ro.Started(0, 200))
    r, actions = ro.step(r, ro.NewReady(200))
    assert actions == [Retire(100)] and r.phase is Phase.RETIRING


def test_the_next_batch_starts_only_when_the_old_one_is_gone() -> None:
    r, _ = ro.step(begin(), ro.Started(0, 200))
    r, _ = ro.step(r, ro.NewReady(200))
    r, actions = ro.step(r, ro.Gone(100, now=3.0))
    assert actions == [StartNew(1)] and r.phase is Phase.STARTING and r.deadline == 13.0


def test_every_instance_replaced_is_done() -> None:
    r = begin()
    for i in range(2):
        r, _ = ro.step(r, ro.Started(i, 200 + i))
        r, _ = ro.step(r, ro.NewReady(200 + i))
        r, _ = ro.step(r, ro.Gone(100 + i, now=float(i)))
    assert r.phase is Phase.DONE and [(p.old, p.new) for p in r.done] == [(100, 200), (101, 201)]


def test_a_failed_new_instance_is_discarded_and_the_old_keeps_serving() -> None:
    r, _ = ro.step(begin(), ro.Started(0, 200))
    r, actions = ro.step(r, ro.NewFailed(200, "exited with code 1 before it was ready"))
    assert actions == [Discard(200)]
    r, actions = ro.step(r, ro.Gone(200, now=1.0))
    assert r.phase is Phase.FAILED and actions == [] and r.done == ()
    assert r.failure is not None and r.failure.index == 0 and r.failure.failed == "exited with code 1 before it was ready"


def test_failure_in_the_second_batch_keeps_the_first_replacement() -> None:
    r, _ = ro.step(begin(), ro.Started(0, 200))
    r, _ = ro.step(r, ro.NewReady(200))
    r, _ = ro.step(r, ro.Gone(100, now=1.0))
    r, _ = ro.step(r, ro.Started(1, 201))
    r, actions = ro.step(r, ro.NewFailed(201, "boom"))
    assert actions == [Discard(201)]
    r, _ = ro.step(r, ro.Gone(201, now=2.0))
    assert r.phase is Phase.FAILED and len(r.done) == 1


def test_the_deadline_fails_every_new_instance_not_ready_yet() -> None:
    r, _ = ro.step(begin(), ro.Started(0, 200))
    r, actions = ro.step(r, ro.Tick(9.9))
    assert actions == [] and r.phase is Phase.STARTING
    r, actions = ro.step(r, ro.Tick(10.0))
    assert actions == [Discard(200)] and r.failure is not None and r.failure.failed == "was not ready within 10s"


def test_a_surge_batch_waits_for_all_then_retires_the_ready_and_discards_the_failed() -> None:
    r = begin(n=3, surge=2)
    r, _ = ro.step(r, ro.Started(0, 200))
    r, _ = ro.step(r, ro.Started(1, 201))
    r, actions = ro.step(r, ro.NewReady(200))
    assert actions == []  # 201 still booting
    r, actions = ro.step(r, ro.NewFailed(201, "boom"))
    assert actions == [Retire(100), Discard(201)]
    r, _ = ro.step(r, ro.Gone(100, now=1.0))
    assert r.phase is Phase.RETIRING
    r, actions = ro.step(r, ro.Gone(201, now=1.1))
    assert r.phase is Phase.FAILED and actions == [] and [p.index for p in r.done] == [0]
    assert r.todo == ((2, 102),)  # never started


def test_a_ready_event_after_failure_is_ignored() -> None:
    r, _ = ro.step(begin(), ro.Started(0, 200))
    r, _ = ro.step(r, ro.NewFailed(200, "boom"))
    r2, actions = ro.step(r, ro.NewReady(200))
    assert actions == [] and r2 == r


def test_cancel_while_starting_discards_the_new_instances_and_later_events_change_nothing() -> None:
    r, _ = ro.step(begin(), ro.Started(0, 200))
    r, actions = ro.step(r, ro.Cancel())
    assert r.phase is Phase.CANCELLED and actions == [Discard(200)]
    assert ro.step(r, ro.NewReady(200)) == (r, [])


def test_cancel_while_retiring_keeps_the_replacements() -> None:
    r, _ = ro.step(begin(), ro.Started(0, 200))
    r, _ = ro.step(r, ro.NewReady(200))
    r, actions = ro.step(r, ro.Cancel())
    assert r.phase is Phase.CANCELLED and actions == []


def test_nothing_to_replace_is_done_at_once() -> None:
    r, actions = ro.start([], 1, 10.0, now=0.0)
    assert r.phase is Phase.DONE and actions == []


def test_batches_follow_index_order_whatever_the_input_order() -> None:
    r, actions = ro.start([(2, 7), (0, 5), (1, 6)], 2, 1.0, now=0.0)
    assert actions == [StartNew(0), StartNew(1)]
