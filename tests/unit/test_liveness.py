"""Liveness decisions (pure) and the sweep's plan, step by step on a ManualClock."""

from __future__ import annotations

import asyncio
from typing import Any

from corral.clock import ManualClock
from corral.daemon.view import AppView, InstanceView, Snapshot
from corral.health.liveness import Liveness
from corral.monitor.alerts import alert_for
from corral.monitor.sweep import FLAPPING, Sweeper, plan

START = 3.0  # start_period


def probe(live: Liveness, clock: ManualClock, ok: bool, pid: int = 100, status: str = "online",
          paused: bool = False, started: float | None = None) -> str:
    started = clock.now() if started is None else started
    if not live.should_probe("api", 0, pid, status, started, paused):
        return "skipped"
    return live.observe("api", 0, pid, ok, clock.now(), 3, START).outcome


def test_failures_in_the_start_period_do_not_count_and_three_in_a_row_replace_once() -> None:
    clock, live = ManualClock(), Liveness()
    born = clock.now()
    steps = []
    for _ in range(3):  # 0s, 1s, 2s: inside start_period
        steps.append(probe(live, clock, False, started=born))
        clock.advance(1.0)
    assert steps == ["grace", "grace", "grace"]
    steps = [probe(live, clock, False, started=born) for _ in range(4)]  # 3s: counted
    assert steps == ["failed", "failed", "replace", "skipped"]  # one replacement per crossing
    live.replaced("api", 0, 100)
    assert probe(live, clock, False, started=born) == "failed"  # counting again from zero


def test_a_pass_resets_the_count_and_ends_the_start_period() -> None:
    clock, live = ManualClock(), Liveness()
    born = clock.now()
    assert probe(live, clock, True, started=born) == "ok"
    assert [probe(live, clock, ok, started=born) for ok in (False, False, True, False, False)] == \
        ["failed", "failed", "ok", "failed", "failed"]  # 0.0s in: the start period ended with the pass


def test_a_rollout_pauses_and_forgets_the_count_and_a_new_pid_starts_fresh() -> None:
    clock, live = ManualClock(), Liveness()
    clock.advance(10)
    born = clock.now() - 10
    assert [probe(live, clock, False, started=born) for _ in range(2)] == ["failed", "failed"]
    assert probe(live, clock, False, paused=True, started=born) == "skipped"
    assert probe(live, clock, False, started=born) == "failed"  # 1 again, not 3
    assert probe(live, clock, False, status="launching", started=born) == "skipped"
    assert probe(live, clock, False, pid=200) == "grace"  # a new instance: its own start period
    assert live.observe("api", 0, 100, False, clock.now(), 3, START).outcome == "stale"


def test_only_the_crossing_alerts() -> None:
    base = {"probe": "http", "detail": "timed out after 2s", "failures": 2, "threshold": 3, "pid": 9}
    assert alert_for("liveness_failed", "api", 0, "m", {**base, "replacing": False}) is None
    alert = alert_for("liveness_failed", "api", 0, "liveness http probe failed", {**base, "replacing": True})
    assert alert is not None and not isinstance(alert, str)
    assert alert.kind == "liveness" and alert.severity == "warning" and alert.title.startswith("api[0]: ")
    assert alert_for("sweep", "", None, "sweep: ok", {"problems": [], "revived": []}) is None
    assert alert_for("sweep", "", None, "sweep: 1 problem(s)", {"problems": [{"app": "a"}]}) is not None


def snap(now: float, *apps: tuple[str, str, list[tuple[str, float, int]]]) -> Snapshot:
    return Snapshot(now, tuple(AppView(name, n, "default", desired,
                                       tuple(InstanceView(i, st, 1 if st == "online" else None, None, restarts, at)
                                             for i, (st, at, restarts) in enumerate(insts)))
                               for n, (name, desired, insts) in enumerate(apps)))


def test_the_plan_reports_down_and_flapping_apps_and_revives_errored_ones() -> None:
    now = 1_700_000_000.0
    view = snap(now, ("ok", "online", [("online", now - FLAPPING - 1, 5)]),
                ("new", "online", [("online", now - 10, 0)]),  # just started, never restarted: steady
                ("flap", "online", [("online", now - 120, 4)]),
                ("dead", "online", [("errored", now - 999, 9), ("online", now - 5000, 0)]),
                ("off", "stopped", [("stopped", now, 0)]))
    out = plan(view, now, {}, 1200)
    assert [p["app"] for p in out.problems] == ["flap", "dead"]
    assert out.problems[0]["problem"] == "flapping (up 2 min after 4 restart(s))"
    assert out.problems[1]["problem"] == "not online (1 of 2: errored)"
    assert out.revive == ["dead"]
    assert plan(view, now, {"dead": now - 1199}, 1200).revive == []  # never more often than once a sweep


class FakeCore:
    """The core's surface the sweeper uses: a view, call, publish and a clock."""

    def __init__(self, clock: ManualClock, view: Snapshot) -> None:
        self.clock, self.snapshot = clock, view
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.events: list[Any] = []

    def view(self) -> Snapshot:
        return self.snapshot

    async def call(self, op: str, **args: Any) -> Any:
        self.calls.append((op, args))
        return {}

    def publish(self, event: Any) -> None:
        self.events.append(event)


def test_the_sweeper_revives_once_per_interval_and_reports_every_time() -> None:
    clock = ManualClock()
    core = FakeCore(clock, snap(clock.now(), ("dead", "online", [("errored", clock.now(), 3)])))
    sweeper = Sweeper(core)  # type: ignore[arg-type]
    first = asyncio.run(sweeper.run(1200))
    assert core.calls == [("restart", {"target": "dead"})] and first.revived == ["dead"]
    clock.advance(600)  # a sweep sooner than the interval (settings changed): reported, not revived
    second = asyncio.run(sweeper.run(1200))
    assert len(core.calls) == 1 and second.revived == [] and second.problems[0]["app"] == "dead"
    clock.advance(600)
    asyncio.run(sweeper.run(1200))
    assert len(core.calls) == 2
    assert [e.kind for e in core.events] == ["revived", "sweep", "sweep", "revived", "sweep"]
