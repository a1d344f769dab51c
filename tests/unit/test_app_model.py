"""The pure app model: resize by index, one mutation at a time, scale targets."""

from __future__ import annotations

from corral.lifecycle import app as am
from corral.lifecycle.app import AddSlot, AppState, Busy, Desired, RemoveSlot, SlotInfo
from corral.lifecycle.instance import Status

ON = AppState(desired=Desired.ONLINE, instances=2)


def slots(*pairs: tuple[int, int], status: Status = Status.ONLINE) -> list[SlotInfo]:
    return [SlotInfo(uid, index, status) for uid, index in pairs]


def test_resize_from_nothing_adds_a_started_slot_per_index() -> None:
    assert am.resize(ON, []) == [AddSlot(0, True), AddSlot(1, True)]


def test_resize_of_a_stopped_app_adds_slots_without_starting_them() -> None:
    assert am.resize(AppState(instances=1), []) == [AddSlot(0, False)]


def test_resize_counts_indices_not_slots_so_a_rollouts_second_slot_is_no_instance() -> None:
    # index 0 has its old and its new slot (a reload): index 1 is still missing
    assert am.resize(ON, slots((1, 0), (3, 0))) == [AddSlot(1, True)]


def test_resize_fills_the_lowest_missing_index() -> None:
    state = AppState(desired=Desired.ONLINE, instances=3)
    assert am.resize(state, slots((1, 0), (2, 2))) == [AddSlot(1, True)]


def test_resize_down_removes_every_slot_past_the_count() -> None:
    state = AppState(desired=Desired.ONLINE, instances=1)
    assert am.resize(state, slots((1, 0), (2, 1), (3, 2), (4, 1))) == [RemoveSlot(2), RemoveSlot(3), RemoveSlot(4)]


def test_resize_of_a_deleting_app_does_nothing() -> None:
    assert am.resize(AppState(desired=Desired.ONLINE, instances=3, deleting=True), []) == []


def test_begin_takes_a_free_app() -> None:
    state, busy = am.begin(ON, "reload", 10.0)
    assert busy is None and state.mutation == am.Mutation("reload", 10.0)


def test_begin_on_a_busy_app_is_refused_and_says_which_mutation_and_since_when() -> None:
    state, _ = am.begin(ON, "reload", 10.0)
    again, busy = am.begin(state, "start", 13.0)
    assert again is state and busy == Busy("reload", 3.0)
    assert am.busy_message("web", busy) == \
        "web: a reload is in progress (started 3.0 s ago); try again when it ends"


def test_end_frees_the_app_for_the_next_mutation() -> None:
    state, _ = am.begin(ON, "scale", 1.0)
    state, busy = am.begin(am.end(state), "reload", 2.0)
    assert busy is None and state.mutation is not None and state.mutation.kind == "reload"


def test_busy_message_in_minutes_after_two() -> None:
    assert "(started 5 min ago)" in am.busy_message("w", Busy("reload", 300.0))


def test_scale_targets() -> None:
    assert am.scale_target(2, "4", 1024) == 4
    assert am.scale_target(2, "+3", 1024) == 5
    assert am.scale_target(2, "-1", 1024) == 1
    assert am.scale_target(2, "-2", 1024) == "would have 0 instances (at least 1; use stop to stop it)"
    assert am.scale_target(2, "2000", 1024) == "would have 2000 instances (at most 1024)"
    assert am.scale_target(2, "99999999999999999999", 1024) == \
        '"99999999999999999999" is not a number of instances (use 4, +2 or -1)'
    assert am.scale_target(2, "1e3", 1024) == '"1e3" is not a number of instances (use 4, +2 or -1)'
    assert am.scale_target(2, "", 1024) == '"" is not a number of instances (use 4, +2 or -1)'


def test_duplicated_indices_are_found() -> None:
    assert am.duplicated_indices(slots((1, 0), (2, 1))) == []
    assert am.duplicated_indices(slots((1, 0), (2, 1), (3, 0), (4, 1))) == [0, 1]
    stopped = [SlotInfo(5, 0, Status.STOPPED)]
    assert am.duplicated_indices(slots((1, 0)) + stopped) == []
