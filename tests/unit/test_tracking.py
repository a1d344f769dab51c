"""Which processes belong to which spawn, from a snapshot (pure), and the write-ahead record."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from corral.daemon.store import Store
from corral.process.cgroups import cgroup2_mount, own_cgroup, scope_name
from corral.process.tracking import Proc, Tree, assign, marker_of

A, B = "r1-1-1", "r1-2-1"


def test_the_marker_is_read_from_a_raw_environment() -> None:
    assert marker_of(b"PATH=/bin\0CORRAL_INSTANCE_ID=r1-3-2\0HOME=/root\0") == "r1-3-2"
    assert marker_of(b"CORRAL_INSTANCE_ID=r1-3-2") == "r1-3-2"  # first and last
    assert marker_of(b"X_CORRAL_INSTANCE_ID=nope\0PATH=/bin\0") is None  # another variable's suffix
    assert marker_of(b"") is None  # a zombie, a kernel thread
    assert marker_of(b"CORRAL_INSTANCE_ID=\0") is None


def test_a_process_belongs_to_the_tree_whose_marker_it_carries() -> None:
    trees = [Tree(A, pgid=100, group_ok=True), Tree(B, pgid=200, group_ok=True)]
    procs = [
        Proc(100, 100),  # A's leader: in A's group, environment not read
        Proc(101, 100),  # A's child
        Proc(150, 150, A),  # left A's group (setsid): found by its marker
        Proc(160, 160, B),  # left B's group
        Proc(170, 170, "r0-9-9"),  # another daemon's, or a finished spawn's: nobody's here
        Proc(180, 180, None),  # unreadable, in no known group: nobody's
    ]
    assert assign(procs, trees) == {A: [100, 101, 150], B: [160]}


def test_the_marker_wins_over_the_group() -> None:
    """A process of B that joined A's group (same session) is B's, found by its marker."""
    trees = [Tree(A, pgid=100, group_ok=True), Tree(B, pgid=200, group_ok=True)]
    assert assign([Proc(300, 100, B), Proc(301, 100, "r0-9-9")], trees) == {A: [301], B: [300]}


def test_an_adopted_group_counts_only_when_it_is_proven_to_be_the_same_group() -> None:
    """After a daemon died, a saved group number may be someone else's by now: it counts if its
    leader was verified (pid and start time), or if a member of it carries the marker."""
    unverified = Tree(A, pgid=100, group_ok=False, adopted=True)
    assert assign([Proc(100, 100), Proc(101, 100)], [unverified]) == {A: []}
    assert assign([Proc(100, 100), Proc(101, 100, A)], [unverified]) == {A: [100, 101]}
    verified = Tree(A, pgid=100, group_ok=True, adopted=True)
    assert assign([Proc(100, 100), Proc(101, 100)], [verified]) == {A: [100, 101]}


def test_a_tree_with_no_process_left_is_empty() -> None:
    assert assign([], [Tree(A, pgid=100, group_ok=True)]) == {A: []}


def test_the_cgroup_v2_hierarchy_and_our_place_in_it() -> None:
    hybrid = (
        "25 30 0:22 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
        "26 25 0:23 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
        "35 25 0:31 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
    )
    assert cgroup2_mount(hybrid) == "/sys/fs/cgroup/unified"
    optional_fields = "29 23 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n"
    assert cgroup2_mount(optional_fields) == "/sys/fs/cgroup"
    assert cgroup2_mount("26 25 0:23 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n") is None
    assert own_cgroup("4:memory:/x\n0::/user.slice/user-1000.slice/user@1000.service/app.slice\n") == \
        "/user.slice/user-1000.slice/user@1000.service/app.slice"
    assert own_cgroup("0::/\n") == "/"
    assert own_cgroup("4:memory:/x\n") is None  # cgroup v1 only


def test_each_home_has_its_own_cgroup_scope() -> None:
    assert scope_name("/home/a/.corral") == scope_name("/home/a/.corral")
    assert scope_name("/home/a/.corral") != scope_name("/home/b/.corral")
    assert scope_name("/x").startswith("corral-")


def test_the_write_ahead_record_is_committed_before_the_batch_ends(tmp_path: Path) -> None:
    """A spawn's record must survive a daemon killed mid-burst: another connection sees it at once."""
    path = str(tmp_path / "state.db")
    store = Store(path)
    other = sqlite3.connect(path)
    with store.batch():
        store.put_app("api", 0, {"name": "api"}, "online")
        store.intend("r1-1-1", "api", 1, "/sys/fs/cgroup/corral-x/r1-1-1")
        assert other.execute("SELECT marker, app, cgroup FROM trees").fetchall() == [
            ("r1-1-1", "api", "/sys/fs/cgroup/corral-x/r1-1-1")]
        assert other.execute("SELECT name FROM apps").fetchall() == [("api",)]  # what came before, too
        store.tree_started("r1-1-1", 4242, 77, None)
    assert store.trees() == [("r1-1-1", "api", 1, None, 4242, 77)]
    store.tree_gone("r1-1-1")
    assert store.trees() == []
    other.close()
    store.close()
