"""The core on a ManualClock: the kill escalation, waits and views run on the injected clock."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

from corral.config.spec import AppSpec
from corral.lifecycle import instance as lc
from corral.clock import ManualClock
from corral.daemon.core import DaemonCore
from corral.daemon.store import MemoryStore
from corral.daemon.supervisor import Supervisor
from corral.daemon.timers import manual_timers
from corral.events import AppAdded, Event, Note
from corral.logs.sinks import StdoutLogs
from corral.process.tracking import Tree

STUBBORN = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(60)"


def supervisor(loop: asyncio.AbstractEventLoop, clock: ManualClock) -> Supervisor:
    core = DaemonCore(loop, clock=clock, timers=manual_timers(clock))
    return Supervisor(loop, MemoryStore(), StdoutLogs(), core=core)


def group_of(child: subprocess.Popen[bytes]) -> Tree:
    """The child's process group as a tree of ours (it leads its group)."""
    return Tree("test-marker", pgid=child.pid, group_ok=True)


def run(body: Any) -> Any:
    return asyncio.run(body())


def stubborn() -> subprocess.Popen[bytes]:
    """A process group whose only member ignores SIGTERM (once it has said "up")."""
    child = subprocess.Popen([sys.executable, "-c", STUBBORN], stdout=subprocess.PIPE, process_group=0)
    assert child.stdout is not None and child.stdout.readline() == b"up\n"
    child.stdout.close()
    return child


def test_the_kill_escalation_sends_sigkill_when_the_clock_passes_kill_timeout() -> None:
    child = stubborn()
    try:

        async def body() -> list[Event]:
            clock = ManualClock()
            sup = supervisor(asyncio.get_running_loop(), clock)
            kills: list[Event] = []
            sup.bus.listen(kills.append, Note)
            sup.terminate(group_of(child), "SIGTERM", 5.0, "api", 0)
            clock.advance(4.9)
            assert child.poll() is None and kills == []
            clock.advance(0.2)
            return kills

        kills = run(body)
        assert child.wait(timeout=30) == -9
        assert [(e.kind, e.app, e.instance) for e in kills] == [("kill", "api", 0)]
        assert "SIGKILL" in kills[0].message
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_a_cancelled_escalation_never_kills() -> None:
    child = stubborn()
    try:

        async def body() -> None:
            clock = ManualClock()
            sup = supervisor(asyncio.get_running_loop(), clock)
            sup.terminate(group_of(child), "SIGTERM", 5.0, "api", 0).cancel()
            clock.advance(60)

        run(body)
        assert child.poll() is None
    finally:
        child.kill()
        child.wait()


def test_wait_for_gives_up_when_the_injected_clock_passes_the_timeout() -> None:
    async def body() -> list[object]:
        clock = ManualClock()
        sup = supervisor(asyncio.get_running_loop(), clock)
        waiting = asyncio.ensure_future(sup.wait_for(lambda: False, 30.0))
        await asyncio.sleep(0)
        clock.advance(29)
        await asyncio.sleep(0)
        early = waiting.done()
        clock.advance(2)
        return [early, await asyncio.wait_for(waiting, 5)]

    assert run(body) == [False, False]


def test_wait_for_returns_once_a_change_makes_the_predicate_true() -> None:
    async def body() -> bool:
        clock = ManualClock()
        sup = supervisor(asyncio.get_running_loop(), clock)
        flag: list[int] = []
        waiting = asyncio.ensure_future(sup.wait_for(lambda: bool(flag), 30.0))
        await asyncio.sleep(0)
        flag.append(1)
        sup._notify()
        return await asyncio.wait_for(waiting, 5)

    assert run(body) is True


def test_adding_an_app_publishes_it_and_the_view_shows_it_read_only() -> None:
    async def body() -> tuple[list[Event], Any, list[dict[str, Any]]]:
        clock = ManualClock(wall=2000.0)
        sup = supervisor(asyncio.get_running_loop(), clock)
        added = sup.core.subscribe(AppAdded)
        sup.add_app(AppSpec(name="api", cwd="/", cmd=["true"], instances=2), {})
        return added.take(), sup.core.view(), sup.store.events("api")

    added, view, rows = run(body)
    assert [(e.app, e.app_id, e.ts) for e in added] == [("api", 0, 2000.0)]
    assert view.taken_at == 2000.0 and [a.name for a in view.apps] == ["api"]
    assert [(i.index, i.status, i.pid) for i in view.apps[0].instances] == [(0, "stopped", None), (1, "stopped", None)]
    assert [r["kind"] for r in rows] == ["app_added"]


def test_lost_log_lines_reach_the_bus_the_store_and_the_view() -> None:
    """What a monitor needs to alert on a full disk: a LogDropped on the bus when writing resumes
    (kept in the history), and the counts in the read-only view."""
    from corral.events import LogDropped

    async def body() -> tuple[list[Event], Any, list[dict[str, Any]]]:
        sup = supervisor(asyncio.get_running_loop(), ManualClock(wall=3000.0))
        dropped = sup.core.subscribe(LogDropped)
        app = sup.add_app(AppSpec(name="api", cwd="/", cmd=["true"]), {})
        app.log_loss.drop(0, "err", "/d/api-error.log", b"a\nbb\n", 2990.0, OSError(28, "No space left on device"))
        app.log_loss.withheld += 1
        app.log_loss.resumed(0, "err")
        view = sup.core.view()
        app.log_loss.drop(0, "out", "/d/api-out.log", b"c\n", 2995.0, OSError(28, "No space left on device"))
        sup.stop(app, lc.After.DELETE)  # deleted while its stdout drops lines: reported before it goes
        await sup.wait_for(lambda: "api" not in sup.apps, 5)
        return dropped.take(), view, sup.store.events("api")

    events, view, rows = run(body)
    assert [(e.app, e.instance, e.lines, e.size, e.since) for e in events] == [  # type: ignore[attr-defined]
        ("api", 0, 2, 5, 2990.0), ("api", 0, 1, 2, 2995.0)]
    [app] = view.apps
    assert (app.log_dropped, app.log_dropped_bytes, app.log_withheld) == (2, 5, 1)
    assert [r["kind"] for r in rows] == ["app_added", "log_dropped", "log_dropped", "app_removed"]
    assert rows[1]["data"]["bytes"] == 5


def test_call_runs_the_same_operations_as_the_control_socket() -> None:
    from corral.daemon.ops.apps import Context

    async def body() -> Any:
        sup = supervisor(asyncio.get_running_loop(), ManualClock())
        sup.core.context = Context(sup, "/nonexistent/dump.json")
        return await sup.core.call("ping")

    result = run(body)
    assert result["apps"] == 0 and result["bus"]["dropped"] == 0
