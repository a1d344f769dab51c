"""Readiness probes run their attempts on the core's timers: intervals follow the injected clock."""

from __future__ import annotations

import asyncio
import socket

from corral.clock import ManualClock
from corral.daemon.core import DaemonCore
from corral.daemon.timers import manual_timers
from corral.feature_events import ProbeResult
from corral.health.probes import ReadinessProbe


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def settle(results: list[ProbeResult], count: int) -> None:
    """Let the loop run the attempt under way until ``count`` results are in."""
    async with asyncio.timeout(10):
        # a condition with a deadline: the probe's own task runs meanwhile
        while len(results) < count:  # noqa: ASYNC110
            await asyncio.sleep(0.001)


def test_a_tcp_probe_retries_every_interval_of_the_clock_and_stops_once_ready() -> None:
    port = free_port()

    async def body() -> tuple[list[ProbeResult], int]:
        clock = ManualClock()
        core = DaemonCore(asyncio.get_running_loop(), clock=clock, timers=manual_timers(clock))
        results: list[ProbeResult] = []
        core.bus.listen(results.append, ProbeResult)  # type: ignore[arg-type]
        ready: list[bool] = []
        probe = ReadinessProbe(core, "api", 0, {"kind": "tcp", "port": port, "interval": 2.0, "timeout": 1.0},
                               [], lambda: not ready, lambda: ready.append(True), reaper=None,  # type: ignore[arg-type]
                               cwd=None, env={})
        probe.start()
        clock.advance(0)
        await settle(results, 1)  # refused: nothing listens yet
        clock.advance(1.9)
        await asyncio.sleep(0.05)
        assert len(results) == 1  # the next attempt waits for the interval
        clock.advance(0.1)
        await settle(results, 2)
        with socket.create_server(("127.0.0.1", port)):
            clock.advance(2)
            await settle(results, 3)
        clock.advance(10)
        await asyncio.sleep(0.05)
        return results, len(ready)

    results, readies = asyncio.run(body())
    assert [r.ok for r in results] == [False, False, True] and readies == 1
    assert results[0].probe == "tcp" and results[0].detail and not results[0].stored
