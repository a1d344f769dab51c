"""A write the state database refuses never reaches the daemon: it is kept and saved later.

SQLite itself refuses here, no mock: ``PRAGMA query_only`` makes every write fail as a read-only
file does ("attempt to write a readonly database"), ``PRAGMA max_page_count`` as a full disk does
("database or disk is full").  Retries run on a ManualClock.
"""

from __future__ import annotations

import logging
import random
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from corral.clock import ManualClock
from corral.daemon.pending import PendingWrites
from corral.daemon.store import Store, StoreUnavailable
from corral.daemon.timers import manual_timers
from corral.events import Note


def refuse_writes(store: Store, refuse: bool = True) -> None:
    store.db.execute(f"PRAGMA query_only = {int(refuse)}")  # SQLite's own refusal: SQLITE_READONLY


def tables(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """What another connection (the next daemon) reads."""
    db = sqlite3.connect(path)
    try:
        return {
            "apps": db.execute("SELECT name, id, spec, desired FROM apps ORDER BY name").fetchall(),
            "slots": db.execute("SELECT * FROM slots ORDER BY app, idx").fetchall(),
            "trees": db.execute("SELECT * FROM trees ORDER BY marker").fetchall(),
            "events": db.execute("SELECT app, kind, message FROM events ORDER BY id").fetchall(),
        }
    finally:
        db.close()


def note(app: str, message: str) -> Note:
    return Note(app=app, kind="note", message=message)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def store(tmp_path: Path, clock: ManualClock) -> Any:
    s = Store(str(tmp_path / "state.db"))
    s.retry_with(manual_timers(clock))
    yield s
    s.close()


def test_failed_writes_are_kept_shown_and_saved_once_the_disk_takes_them(
        store: Store, clock: ManualClock, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "corral.daemon")
    store.put_app("a", 0, {"name": "a"}, "online")
    store.record(note("a", "before"))
    refuse_writes(store)
    store.put_app("b", 1, {"name": "b"}, "online")
    store.set_desired("a", "stopped")
    store.put_instance("b", 7, 4242, 4242, 99, 1.5, 0)
    for i in range(3):
        store.record(note("b", f"while refused {i}"))
    status = store.status()
    assert (status["ok"], status["pending"], status["error"]) == (False, 6, "attempt to write a readonly database")
    assert [e["message"] for e in store.events("b")] == ["while refused 0", "while refused 1", "while refused 2"]
    assert [e["message"] for e in store.events(None, 2)] == ["while refused 1", "while refused 2"]
    assert tables(tmp_path / "state.db")["apps"] == [("a", 0, '{"name": "a"}', "online")]
    clock.advance(5)  # retries at 0.5, 1.5, 3.5 fail
    assert not store.status()["ok"]
    refuse_writes(store, False)
    clock.advance(4)  # the retry at 7.5
    assert store.status() == {"ok": True, "pending": 0, "events_dropped": 0}
    saved = tables(tmp_path / "state.db")
    assert saved["apps"] == [("a", 0, '{"name": "a"}', "stopped"), ("b", 1, '{"name": "b"}', "online")]
    assert saved["slots"] == [("b", 7, 4242, 4242, 99, 1.5, 0)]
    assert [m for _, _, m in saved["events"]] == ["before", "while refused 0", "while refused 1", "while refused 2"]
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2, lines  # one when saving stops, one when it resumes
    assert lines[0].startswith("state.db: cannot save the daemon's state (attempt to write a readonly database)")
    assert lines[1] == ("state.db: the daemon's state is saved again (not saved for 7.5s: attempt to write a readonly "
                        "database); 3 change(s) and 3 event(s) kept in memory written, 0 event(s) could not be kept")


def test_retries_back_off_to_ten_seconds(store: Store, clock: ManualClock) -> None:
    refuse_writes(store)
    store.put_app("a", 0, {"name": "a"}, "online")
    clock.advance(20.0)  # failed retries at 0.5, 1.5, 3.5, 7.5, 15.5; the next at 25.5
    refuse_writes(store, False)
    clock.advance(5.49)
    assert not store.status()["ok"]
    clock.advance(0.01)
    assert store.status()["ok"]
    refuse_writes(store)
    store.put_app("b", 1, {"name": "b"}, "online")  # a new outage starts from 0.5 s again
    refuse_writes(store, False)
    clock.advance(0.5)
    assert store.status()["ok"]


def test_a_failed_transaction_is_kept_whole(store: Store, clock: ManualClock, tmp_path: Path) -> None:
    with store.batch():
        store.put_app("a", 0, {"name": "a"}, "online")
        store.record(note("a", "first"))
        refuse_writes(store)  # SQLite rolls the whole transaction back: what came before it too
        store.put_instance("a", 1, 10, 10, 5, 1.0, 0)
    assert tables(tmp_path / "state.db")["apps"] == []
    refuse_writes(store, False)
    clock.advance(0.5)
    saved = tables(tmp_path / "state.db")
    assert (saved["apps"], saved["slots"], saved["events"]) == (
        [("a", 0, '{"name": "a"}', "online")], [("a", 1, 10, 10, 5, 1.0, 0)], [("a", "note", "first")])


def test_a_full_database_is_kept_and_caught_up(tmp_path: Path, clock: ManualClock) -> None:
    store = Store(str(tmp_path / "state.db"))
    store.retry_with(manual_timers(clock))
    pages = store.db.execute("PRAGMA page_count").fetchone()[0]
    store.db.execute(f"PRAGMA max_page_count = {pages}")  # full: no page more
    for i in range(50):
        store.record(Note(app="a", kind="crash", message=f"crash {i} " + "x" * 2000))
    status = store.status()
    assert (status["ok"], status["error"]) == (False, "database or disk is full")
    assert len(store.events("a", 100)) == 50
    store.db.execute("PRAGMA max_page_count = 1000000")
    clock.advance(0.5)
    assert store.status()["ok"]
    assert [m.split(" x")[0] for _, _, m in tables(tmp_path / "state.db")["events"]] == [
        f"crash {i}" for i in range(50)]
    store.close()


def test_a_spawn_record_is_refused_rather_than_left_unsaved(store: Store, tmp_path: Path) -> None:
    """No fork without its record: intend says so, and keeps nothing of it."""
    refuse_writes(store)
    store.put_app("a", 0, {"name": "a"}, "online")
    with pytest.raises(StoreUnavailable, match=r"^the state database does not take writes \(attempt to write a "
                                                r"readonly database\): waiting until it does"):
        with store.batch():
            store.intend("r-1-1", "a", 1, None)
    assert store.status()["pending"] == 1  # the app, not the record
    refuse_writes(store, False)
    store.intend("r-1-2", "a", 1, None)  # writes what waited, then the record, at once
    assert store.status()["ok"]
    saved = tables(tmp_path / "state.db")
    assert saved["trees"] == [("r-1-2", "a", 1, None, None, None)] and [a[0] for a in saved["apps"]] == ["a"]


def test_a_record_that_fails_with_its_batch_leaves_the_batch_kept(store: Store, clock: ManualClock,
                                                                  tmp_path: Path) -> None:
    with store.batch():
        store.put_app("a", 0, {"name": "a"}, "online")
        refuse_writes(store)
        with pytest.raises(StoreUnavailable):
            store.intend("r-1-1", "a", 1, None)
        store.record(note("a", "spawn_failed"))
    refuse_writes(store, False)
    clock.advance(0.5)
    saved = tables(tmp_path / "state.db")
    assert (saved["apps"][0][0], saved["trees"], saved["events"]) == ("a", [], [("a", "note", "spawn_failed")])


def test_a_write_refused_for_what_it_is_is_dropped_not_retried(store: Store, caplog: pytest.LogCaptureFixture,
                                                              tmp_path: Path) -> None:
    store.put_app("a", 0, {"name": "a"}, "online")
    store.put_app("b", 0, {"name": "b"}, "online")  # the same id: a constraint, it would fail forever
    assert store.status()["ok"]
    assert [r.getMessage() for r in caplog.records] == [
        "state.db: a write was refused and is dropped (UNIQUE constraint failed: apps.id): INSERT INTO apps"]
    assert [a[0] for a in tables(tmp_path / "state.db")["apps"]] == ["a"]


def test_events_kept_in_memory_are_bounded_and_the_loss_counted() -> None:
    pending = PendingWrites(max_events=3, max_event_bytes=100)
    for i in range(5):
        pending.add(None, "INSERT", (0.0, "a", 0, "note", f"m{i}", None))
    assert ([p[4] for p in pending.event_params()], pending.dropped) == (["m2", "m3", "m4"], 2)
    pending.add(None, "INSERT", (0.0, "a", 0, "crash", "x" * 90, None))
    assert ([p[3] for p in pending.event_params()], pending.dropped) == (["crash"], 5)  # bytes bound too


def test_events_that_could_not_be_kept_are_counted_and_the_rest_saved(store: Store, clock: ManualClock,
                                                                     tmp_path: Path) -> None:
    refuse_writes(store)
    for i in range(1005):
        store.record(note("a", f"event {i}"))
    assert (store.status()["events_dropped"], len(store.events("a", 2000))) == (5, 1000)
    refuse_writes(store, False)
    clock.advance(0.5)
    assert store.status() == {"ok": True, "pending": 0, "events_dropped": 5}  # said until the daemon exits
    saved = tables(tmp_path / "state.db")["events"]
    assert (len(saved), saved[0][2], saved[-1][2]) == (1000, "event 5", "event 1004")


def test_rows_kept_in_memory_are_one_per_row() -> None:
    pending = PendingWrites()
    for i in range(1000):
        pending.add(("slot", "a", 1), "INSERT OR REPLACE", ("a", 1, i))
    assert len(pending) == 1 and list(pending.writes()) == [("INSERT OR REPLACE", ("a", 1, 999))]


def _random_ops(rng: random.Random, n: int) -> list[tuple[str, tuple[Any, ...]]]:
    names = ["a", "b", "c"]
    ops: list[tuple[str, tuple[Any, ...]]] = []
    for _ in range(n):
        name, idx = rng.choice(names), rng.randrange(3)
        ops.append(rng.choice([
            ("put_app", (name, names.index(name), {"name": name, "v": rng.randrange(9)}, "online")),
            ("set_desired", (name, rng.choice(["online", "stopped"]))),
            ("delete_app", (name,)),
            ("put_instance", (name, idx, rng.randrange(1, 9), None, None, None, rng.randrange(5))),
            ("drop_instance", (name, idx)),
            ("clear_slots", ()),
            ("clear_apps", ()),
        ] + [("put_app", (name, names.index(name), {"name": name}, "stopped"))] * 2))
    return ops


@pytest.mark.parametrize("seed", range(40))
def test_writes_kept_in_memory_end_as_the_writes_themselves_would(tmp_path: Path, seed: int) -> None:
    """Merged by row, replayed in order: the tables end exactly as if no write had failed."""
    ops = _random_ops(random.Random(seed), 60)
    direct, kept = Store(str(tmp_path / "direct.db")), Store(str(tmp_path / "kept.db"))
    cut = len(ops) // 3
    for name, args in ops[:cut]:
        getattr(direct, name)(*args)
        getattr(kept, name)(*args)
    refuse_writes(kept)
    for name, args in ops[cut:]:
        getattr(direct, name)(*args)
        getattr(kept, name)(*args)
    assert kept.status()["pending"] <= 3 * 3 + 3 * 3 + 4  # one per row (and per table-wide write), however many writes
    refuse_writes(kept, False)
    assert kept.flush()
    direct.close()
    kept.close()
    assert tables(tmp_path / "kept.db") == tables(tmp_path / "direct.db")


def test_a_spawn_the_store_cannot_record_waits_then_starts_by_itself(tmp_path: Path) -> None:
    """The supervisor over a store that refuses writes: no fork, ``waiting_restart`` with the reason,
    and the instance starts as soon as the store's retry saves."""
    import asyncio

    from corral.config.spec import AppSpec
    from corral.daemon.core import DaemonCore
    from corral.daemon.supervisor import Status, Supervisor
    from corral.logs.sinks import StdoutLogs

    async def body() -> None:
        clock = ManualClock()
        loop = asyncio.get_running_loop()
        store = Store(str(tmp_path / "state.db"))
        sup = Supervisor(loop, store, StdoutLogs(), core=DaemonCore(loop, clock=clock, timers=manual_timers(clock)))
        sup.install_signal_handlers()
        refuse_writes(store)
        app = sup.add_app(AppSpec(name="api", cwd="/", cmd=["sleep", "60"]), {})
        sup.start(app)
        slot = app.slots[0]
        assert (slot.status, slot.child, store.trees()) == (Status.WAITING_RESTART, None, [])
        assert slot.spawn_error == ("not started: the state database does not take writes (attempt to write a "
                                    "readonly database): waiting until it does (never a copy the next daemon "
                                    "could not find)")
        assert [e["kind"] for e in store.events("api")][-1] == "spawn_failed"
        clock.advance(0.5)  # a retry: still refused, still waiting
        assert slot.child is None
        refuse_writes(store, False)
        clock.advance(10.0)  # the next retry (10 s at most) saves; the spawn put off runs right after
        assert await asyncio.wait_for(sup.wait_for(lambda: slot.child is not None, 30), 10)
        assert slot.child is not None and slot.tree is not None
        assert (slot.status, slot.state.restarts) == (Status.ONLINE, 0)
        assert [(t[0], t[1], t[4]) for t in store.trees()] == [(slot.tree.marker, "api", slot.child.pid)]
        sup.stop(app)
        assert await asyncio.wait_for(sup.wait_for(lambda: slot.status is Status.STOPPED, 30), 10)
        sup.close()
        store.close()

    asyncio.run(body())
