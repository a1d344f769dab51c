"""The daemon SIGKILLed when the k-th new process appears during start, scale and reload: the next
daemon runs exactly one copy of every instance, and nothing else is left (the long run is
``bench/timed_kills.py``)."""

from __future__ import annotations

import pytest

from tests.timedkills import one

N = 5


@pytest.mark.parametrize("action", ["start", "scale", "reload"])
@pytest.mark.parametrize(("k", "tracking"), [(1, "default"), (4, "default"), (2, "marker")])
def test_a_daemon_killed_mid_burst_leaves_no_second_copy(action: str, k: int, tracking: str) -> None:
    env = {"CORRAL_CGROUPS": "0"} if tracking == "marker" else {}
    trial = one(action, N, k, env=env)
    assert trial.killed, f"the daemon was never killed ({trial.error})"
    assert trial.error == ""
    assert trial.duplicates == [] and trial.orphans == [] and trial.missing == []
    assert trial.slots >= (k if action == "start" else N)
