"""The ``limits`` key: its values (config), and what a spawn sets (pure)."""

from __future__ import annotations

import pytest

from corral.config.convert import Invalid
from corral.config.rlimits import to_limits
from corral.process.limits import INFINITY, plan, shim_options

GB = 1024**3


@pytest.mark.parametrize(("given", "expected"), [
    ({"nofile": 65536}, {"nofile": [65536, 65536]}),
    ({"core": "unlimited"}, {"core": [None, None]}),
    ({"core": "infinity"}, {"core": [None, None]}),
    ({"core": 0}, {"core": [0, 0]}),
    ({"nproc": "512:1024"}, {"nproc": [512, 1024]}),
    ({"nofile": [1024, 4096]}, {"nofile": [1024, 4096]}),
    ({"core": "0:unlimited"}, {"core": [0, None]}),
    ({"as": "1GB", "memlock": "64K"}, {"as": [GB, GB], "memlock": [65536, 65536]}),
    ({"NOFILE": "4096"}, {"nofile": [4096, 4096]}),
    ({}, {}),
])
def test_limit_values(given: dict[str, object], expected: dict[str, object]) -> None:
    assert to_limits(given) == expected


@pytest.mark.parametrize(("given", "says"), [
    (65536, "is not a table of limits"),
    ({"files": 10}, "is not a limit corral knows"),
    ({"nofile": -1}, "is not a limit (open files"),
    ({"nofile": "1GB"}, "is not a limit (open files"),  # sizes only for byte limits
    ({"nofile": True}, "is not a limit"),
    ({"nofile": 1.5}, "is not a limit"),
    ({"nofile": 2**64}, "is not a limit"),
    ({"nofile": "unlimited"}, "cannot be unlimited"),
    ({"nproc": "2048:1024"}, "soft limit above its hard limit"),
    ({"core": "unlimited:0"}, "soft limit above its hard limit"),
    ({"core": "lots"}, 'or a size such as "1GB"'),
])
def test_bad_limits_say_what_is_accepted(given: object, says: str) -> None:
    with pytest.raises(Invalid) as caught:
        to_limits(given)
    assert says in caught.value.text


def test_a_spawn_sets_only_what_differs_from_what_it_inherits() -> None:
    inherited = {"nofile": (20000, 20000), "core": (0, INFINITY)}
    assert plan({"nofile": [20000, 20000]}, inherited, root=False) == []
    assert plan({"nofile": [1024, 1024], "core": [None, None]}, inherited, root=False) == [
        ("core", INFINITY, INFINITY), ("nofile", 1024, 1024)]
    assert plan({"core": [0, 0]}, inherited, root=False) == [("core", 0, 0)]  # the hard limit too


def test_only_root_raises_a_hard_limit() -> None:
    inherited = {"nofile": (1024, 4096)}
    with pytest.raises(ValueError, match=r"limits: nofile: 65536 is above the hard limit 4096"):
        plan({"nofile": [65536, 65536]}, inherited, root=False)
    assert plan({"nofile": [65536, 65536]}, inherited, root=True) == [("nofile", 65536, 65536)]
    assert plan({"nofile": [4096, 4096]}, inherited, root=False) == [("nofile", 4096, 4096)]


def test_the_shim_gets_numbers_with_minus_one_for_unlimited() -> None:
    assert shim_options([("core", INFINITY, INFINITY), ("nofile", 1024, 4096)]) == [
        "--rlimit", "core=-1:-1", "--rlimit", "nofile=1024:4096"]
