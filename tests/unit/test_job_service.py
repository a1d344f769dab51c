"""The jobs service on a core with a ManualClock: one timer for the earliest due job whatever the
number of jobs, runs handed to ``Core.run_once``, their end recorded, a timeout stopping one."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from corral.clock import ManualClock
from corral.daemon.core import DaemonCore
from corral.daemon.timers import manual_timers
from corral.events import JobFinished
from corral.jobs.service import service_of


class Shot:
    def __init__(self, pid: int, on_exit: Any) -> None:
        self.pid, self.on_exit, self.stopped = pid, on_exit, False

    def stop(self, sig: str | None = None) -> None:
        self.stopped = True
        self.on_exit(None, "SIGTERM")


def job(name: str, **keys: Any) -> dict[str, Any]:
    from corral.config.jobs import DEFAULTS
    from corral.config.spec import AppSpec

    return {**DEFAULTS, "name": name, "spec": AppSpec(name=name, cmd=["true"], cwd="/").to_dict(), **keys}


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()  # never run: the core's timers are the ManualClock's
    yield loop
    loop.close()


def make(loop: asyncio.AbstractEventLoop) -> tuple[ManualClock, DaemonCore, list[Shot], list[JobFinished]]:
    clock = ManualClock(wall=1_800_000_000.0)
    core = DaemonCore(loop, clock, manual_timers(clock))
    shots: list[Shot] = []

    def run_once(spec: Any, base_env: Any, on_output: Any, on_exit: Any, extra_env: Any = None) -> Shot:
        shots.append(Shot(1000 + len(shots), on_exit))
        on_output("out", b"line\n")
        return shots[-1]

    core.run_once = run_once  # type: ignore[method-assign]
    finished: list[JobFinished] = []
    core.bus.listen(lambda e: finished.append(e) if isinstance(e, JobFinished) else None, JobFinished)
    return clock, core, shots, finished


def test_a_thousand_jobs_hold_one_timer(loop: asyncio.AbstractEventLoop) -> None:
    clock, core, shots, _ = make(loop)
    core.set_settings({"maintenance": False, "jobs": [job(f"j{i}", interval=60.0 + i % 60) for i in range(1000)]})
    service_of(core)
    assert clock.pending() == 1
    clock.advance(60.0)
    assert len(shots) == 1000 // 60 + 1  # the jobs due at 60 s ran; still one timer for the next one
    assert clock.pending() == 1


def test_runs_end_in_the_history_and_a_timeout_stops_one(loop: asyncio.AbstractEventLoop) -> None:
    clock, core, shots, finished = make(loop)
    core.set_settings({"maintenance": False, "jobs": [job("quick", interval=10.0), job("slow", interval=10.0,
                                                                                         timeout=2.0)]})
    service = service_of(core)
    clock.advance(10.0)
    assert [s.pid for s in shots] == [1000, 1001]
    shots[0].on_exit(0, None)
    clock.advance(2.0)  # slow's timeout
    assert shots[1].stopped
    assert [(e.app, e.outcome, e.tail) for e in finished] == [("quick", "ok", ["line"]), ("slow", "timeout", ["line"])]
    runs = service.history.runs("slow")
    assert [(r["trigger"], r["outcome"], r["signal"], r["tail"]) for r in runs] == [("interval", "timeout", "SIGTERM",
                                                                                      "line")]
