"""The event bus: publish, subscribe by type, bounded queues that drop and count, listeners."""

from __future__ import annotations

import asyncio

import pytest

from corral.clock import ManualClock
from corral.daemon.bus import Bus
from corral.daemon.store import MemoryStore
from corral.events import AppAdded, Event, InstanceCrashed, InstanceExited, InstanceSpawned, Note, StateChanged
from corral.feature_events import ProbeResult


def spawned(pid: int, app: str = "api") -> InstanceSpawned:
    return InstanceSpawned(app=app, instance=0, pid=pid)


def state(old: str, new: str) -> StateChanged:
    return StateChanged(app="api", instance=0, old=old, new=new)


def test_a_subscriber_gets_only_the_types_it_asked_for_in_order() -> None:
    bus = Bus(ManualClock())
    sub = bus.subscribe(InstanceSpawned, StateChanged)
    bus.publish(spawned(1))
    bus.publish(Note(app="api", kind="start", message="started"))
    bus.publish(state("stopped", "launching"))
    bus.publish(spawned(2))
    assert [type(e).__name__ for e in sub.take()] == ["InstanceSpawned", "StateChanged", "InstanceSpawned"]


def test_subscribing_to_no_type_or_to_event_gets_everything() -> None:
    bus = Bus(ManualClock())
    everything, base = bus.subscribe(), bus.subscribe(Event)
    for event in (spawned(1), Note(app="api", kind="x", message="y"), AppAdded(app="api", app_id=0)):
        bus.publish(event)
    assert everything.pending() == base.pending() == 3


def test_publish_stamps_events_with_the_clock_wall_time_unless_they_carry_one() -> None:
    clock = ManualClock(start=0, wall=5000.0)
    bus = Bus(clock)
    sub = bus.subscribe()
    clock.advance(1.5)
    bus.publish(spawned(1))
    bus.publish(InstanceSpawned(app="api", instance=0, pid=2, ts=42.0))
    assert [e.ts for e in sub.take()] == [5001.5, 42.0]


def test_a_full_queue_drops_new_events_and_counts_them_per_subscriber_and_in_total() -> None:
    bus = Bus(ManualClock())
    slow, fast = bus.subscribe(maxsize=3), bus.subscribe(maxsize=100)
    for pid in range(10):
        bus.publish(spawned(pid))
    assert [e.pid for e in slow.take()] == [0, 1, 2]  # type: ignore[attr-defined]
    assert slow.dropped == 7 and fast.dropped == 0 and fast.pending() == 10
    assert bus.dropped == 7
    bus.publish(spawned(10))  # room again: nothing more lost
    assert slow.pending() == 1 and slow.dropped == 7
    stats = bus.stats()
    assert stats["dropped"] == 7 and stats["published"] == 11
    assert [(s["maxsize"], s["dropped"]) for s in stats["subscribers"]] == [(3, 7), (100, 0)]


def test_a_slow_subscriber_never_holds_up_publish_or_the_others() -> None:
    bus = Bus(ManualClock())
    bus.subscribe(maxsize=1)  # never read
    seen: list[int] = []
    bus.listen(lambda e: seen.append(e.pid))  # type: ignore[attr-defined]
    reader = bus.subscribe(maxsize=5000)
    for pid in range(5000):
        bus.publish(spawned(pid))
    assert len(seen) == 5000 and reader.pending() == 5000 and bus.dropped == 4999


def test_a_closed_subscription_gets_nothing_more_and_leaves_the_bus() -> None:
    bus = Bus(ManualClock())
    with bus.subscribe() as sub:
        bus.publish(spawned(1))
        assert len(bus.subscriptions) == 1
    bus.publish(spawned(2))
    assert sub.closed and [e.pid for e in sub.take()] == [1]  # type: ignore[attr-defined]
    assert bus.subscriptions == [] and bus.stats()["subscribers"] == []
    sub.close()  # twice is fine


def test_where_filters_before_queueing_so_filtered_events_are_not_drops() -> None:
    bus = Bus(ManualClock())
    sub = bus.subscribe(maxsize=2, where=lambda e: e.app == "web")
    for pid in range(10):
        bus.publish(spawned(pid, app="api"))
    bus.publish(spawned(99, app="web"))
    assert [e.pid for e in sub.take()] == [99] and sub.dropped == 0  # type: ignore[attr-defined]


def test_listeners_are_called_inside_publish_and_never_miss_one() -> None:
    bus = Bus(ManualClock())
    crashes: list[Event] = []
    stop = bus.listen(crashes.append, InstanceCrashed)
    bus.publish(InstanceCrashed(app="api", instance=0, report={"code": 1}, message="exit code 1"))
    bus.publish(spawned(1))
    assert [e.kind for e in crashes] == ["crash"]
    stop()
    bus.publish(InstanceCrashed(app="api", instance=0, report={}, message="again"))
    assert len(crashes) == 1


def test_a_failing_listener_does_not_cost_the_others_their_events(caplog: pytest.LogCaptureFixture) -> None:
    bus = Bus(ManualClock())

    def broken(event: Event) -> None:
        raise RuntimeError("disk full")

    got: list[Event] = []
    bus.listen(broken)
    bus.listen(got.append)
    sub = bus.subscribe()
    bus.publish(spawned(1))
    assert len(got) == 1 and sub.pending() == 1
    assert "event listener" in caplog.text


def test_the_store_as_listener_keeps_every_stored_event_and_only_those() -> None:
    clock = ManualClock(wall=1000.0)
    bus = Bus(clock)
    store = MemoryStore()
    bus.listen(store.record)
    bus.subscribe(maxsize=1)  # a slow subscriber changes nothing for the store
    for pid in range(300):
        bus.publish(spawned(pid))
        bus.publish(state("launching", "online"))  # live only
        bus.publish(ProbeResult(app="api", instance=0, probe="http", ok=False, detail="refused"))
    bus.publish(InstanceExited(app="api", instance=0, code=0, signal=None, expected=True, message="asked"))
    bus.publish(InstanceExited(app="api", instance=0, code=1, signal=None, expected=False,
                               message="exit code 1 after 0.100s"))
    rows = store.events("api", 1000)
    assert [r["kind"] for r in rows] == ["spawn"] * 300 + ["exit"]
    assert rows[0] == {"ts": 1000.0, "app": "api", "instance": 0, "kind": "spawn", "message": "pid 0",
                       "data": {"pid": 0}}
    assert rows[-1]["message"] == "exit code 1 after 0.100s" and rows[-1]["data"] == {"code": 1, "signal": None}


def test_an_async_reader_waits_for_events_and_ends_when_closed() -> None:
    async def main() -> list[int]:
        bus = Bus(ManualClock())
        sub = bus.subscribe(InstanceSpawned)
        loop = asyncio.get_running_loop()
        for pid in range(3):
            loop.call_soon(bus.publish, spawned(pid))
        loop.call_soon(sub.close)
        return [e.pid async for e in sub]  # type: ignore[attr-defined]

    assert asyncio.run(main()) == [0, 1, 2]


def test_a_subscription_needs_room_for_one_event() -> None:
    with pytest.raises(ValueError):
        Bus().subscribe(maxsize=0)


def test_wants_says_whether_anyone_would_receive_a_type() -> None:
    bus = Bus(ManualClock())
    store = MemoryStore()
    bus.listen(store.record, stored_only=True)
    assert bus.wants(InstanceSpawned) and not bus.wants(StateChanged)  # the store keeps no state changes
    sub = bus.subscribe(StateChanged)
    assert bus.wants(StateChanged)
    sub.close()
    assert not bus.wants(StateChanged)
    stop = bus.listen(lambda e: None, Event)
    assert bus.wants(ProbeResult)
    stop()
    assert not bus.wants(ProbeResult)


def test_a_stored_only_listener_skips_live_only_events() -> None:
    bus = Bus(ManualClock())
    got: list[Event] = []
    bus.listen(got.append, stored_only=True)
    bus.publish(state("stopped", "launching"))
    bus.publish(InstanceExited(app="api", instance=0, code=0, signal=None, expected=True, message="asked"))
    bus.publish(spawned(1))
    assert [e.kind for e in got] == ["spawn"]
