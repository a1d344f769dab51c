"""Thresholds, transition by transition: the pure rules, then the monitor on a ManualClock with
readings given by the test (the /proc side is the sampler's, tested against real processes)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from corral.clock import ManualClock
from corral.config.convert import Invalid
from corral.config.host import host_errors, to_app_thresholds, to_memory_limit
from corral.daemon.core import DaemonCore
from corral.daemon.timers import manual_timers
from corral.events import Note, Threshold
from corral.monitor import rules as rl
from corral.monitor.sampler import real_mounts
from corral.monitor.service import Monitor

CPU = rl.line("cpu", 80.0, samples=2)


def run(ln: rl.Line, values: list[float]) -> list[str | None]:
    watch, out = None, []
    for v in values:
        watch, change = rl.step(watch, ln, v)
        out.append(change)
    return out


def test_two_consecutive_samples_cross_and_one_is_not_enough() -> None:
    assert run(CPU, [85, 50, 85, 50]) == [None, None, None, None]
    assert run(CPU, [85, 90, 95, 99]) == [None, "crossed", None, None]  # one alert, not one per sample


def test_clearing_needs_the_lower_line_not_the_limit() -> None:
    assert CPU.clear == 75.0
    # hovering between the lines (79, 77) never clears; two samples below 75 do
    assert run(CPU, [85, 85, 79, 77, 79, 74, 70]) == [None, "crossed", None, None, None, None, "cleared"]
    assert run(CPU, [85, 85, 70, 90, 70, 70]) == [None, "crossed", None, None, None, "cleared"]


def test_n_of_m_catches_intermittent_breaches() -> None:
    ln = rl.line("cpu", 80.0, samples=2, window=3)
    assert run(ln, [85, 50, 85]) == [None, None, "crossed"]
    assert run(CPU, [85, 50, 85]) == [None, None, None]


def test_available_memory_alerts_at_or_below_and_clears_above() -> None:
    ln = rl.line("memory_available", 25.0)
    assert (ln.below, ln.clear) == (True, 30.0)
    assert run(ln, [40, 25, 20, 28, 31, 35]) == [None, None, "crossed", None, None, "cleared"]


def test_memory_lines_clear_at_ninety_percent() -> None:
    assert rl.line("process_memory", 1000.0).clear == 900.0


def test_app_lines_override_the_host_and_cpu_is_opt_in() -> None:
    host = {"process_memory": 1 << 30, "samples": 3}
    assert set(rl.app_lines(host, {}, None)) == {"process_memory"}
    lines = rl.app_lines(host, {"cpu": 90.0, "samples": 2}, 300 << 20)
    assert lines["cpu"].limit == 90.0 and lines["cpu"].samples == 2
    assert lines["process_memory"].limit == 1 << 30
    assert lines["max_memory_restart"].limit == 300 << 20
    assert rl.host_lines({})["disk"].limit == 75.0 and rl.host_lines({})["cpu"].samples == 2


def test_bad_thresholds_are_one_line_naming_the_field() -> None:
    assert host_errors({"thresholds": {"cpu": "85 %"}}, "f.toml") == [
        'f.toml: thresholds.cpu: "85 %" is not a percentage (write it like "80%", no space)']
    assert host_errors({"thresholds": {"process_memory": "2 gigs"}}, "f.toml") == [
        'f.toml: thresholds.process_memory: "2 gigs" is not a memory size (write it like "300M", "300MB" or "1G")']
    assert host_errors({"metrics_listen": "0.0.0.0:9615"}, "f.toml") == [
        'f.toml: metrics_listen: "0.0.0.0:9615" is not a loopback address: set metrics_token too '
        "(a bearer token the scraper sends)"]
    assert host_errors({"monitor_interval": "fast"}, "f.toml") == [
        'f.toml: monitor_interval: "fast" is not a duration (try "10s")']
    with pytest.raises(Invalid, match="host-wide threshold"):
        to_app_thresholds({"disk": "50%"})


@pytest.mark.parametrize(("raw", "size"), [("300M", 300 << 20), ("300MB", 300 << 20), ("1G", 1 << 30),
                                           ("2048K", 2 << 20), (10 << 20, 10 << 20)])
def test_max_memory_restart_takes_pm2_sizes(raw: Any, size: int) -> None:
    assert to_memory_limit(raw) == size


def test_real_mounts_leave_out_pseudo_filesystems_and_repeats() -> None:
    text = ("27 1 254:0 / / rw - ext4 /dev/vda rw\n"
            "22 27 0:21 / /proc rw - proc proc rw\n"
            "25 24 0:23 / /dev/shm rw - tmpfs tmpfs rw\n"
            "40 27 254:0 /var/x /tmp rw - ext4 /dev/vda rw\n"
            "41 27 7:1 / /snap/core rw - squashfs /dev/loop1 ro\n")
    assert real_mounts(text) == [("/", "254:0")]


class Fake:
    """Readings the test decides, in the sampler's shape."""

    def __init__(self) -> None:
        self.host = {"cpu": 10.0, "memory_available": 60.0, "memory_available_bytes": 1, "memory_total": 2,
                     "load": [0.0, 0.0, 0.0]}
        self.mounts = {"/": {"used": 50.0, "free": 1, "size": 2}}
        self.instances: list[dict[str, Any]] = []
        self.last_host: dict[str, Any] = {}
        self.last_mounts: dict[str, Any] = {}

    def read(self, targets: Any, mono: float, wall: float) -> dict[str, Any]:
        return {"ts": wall, "host": dict(self.host), "mounts": dict(self.mounts), "instances": list(self.instances)}


@pytest.fixture
def loop() -> Any:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def test_the_monitor_publishes_crossings_and_acts_on_max_memory_restart(loop: asyncio.AbstractEventLoop) -> None:
    clock = ManualClock()
    core = DaemonCore(loop, clock=clock, timers=manual_timers(clock))
    sub = core.subscribe(Threshold, Note)
    acted: list[tuple[str, int, str]] = []
    fake = Fake()
    monitor = Monitor(core, sampler=fake, act=lambda app, i, why: acted.append((app, i, why)))  # type: ignore[arg-type]
    core.set_settings({"monitor_interval": 1.0, "thresholds": {"disk": 75.0}})
    monitor.start()
    apps = {"api": type("A", (), {"thresholds": {}, "max_memory_restart": 100 << 20})()}
    reading = lambda: fake.read([], 0, clock.now())  # noqa: E731
    fake.mounts["/"]["used"] = 80.0
    monitor.judge(reading(), apps)
    assert sub.take() == []
    monitor.judge(reading(), apps)
    (event,) = sub.take()
    assert (event.app, event.metric, event.mount, event.value, event.limit, event.cleared) == ("", "disk", "/", 80.0,
                                                                                               75.0, False)
    fake.instances = [{"app": "api", "instance": 0, "pid": 42, "cpu": 1.0, "rss": 120 << 20}]
    monitor.judge(reading(), apps)
    monitor.judge(reading(), apps)
    monitor.judge(reading(), apps)  # still over: acted on once
    (note,) = [e for e in sub.take() if isinstance(e, Note)]
    assert note.kind == "memory_restart" and note.data["pid"] == 42 and note.data["rss"] == 120 << 20
    assert acted == [("api", 0, "max_memory_restart: process tree at 120.0 MiB, over 100.0 MiB for 2 sample(s)")]
    fake.mounts.clear()  # the mount is gone: its alert is cleared, not left open
    monitor.judge(reading(), apps)
    (gone,) = [e for e in sub.take() if isinstance(e, Threshold)]
    assert gone.cleared and gone.mount == "/"


def test_the_monitor_ticks_on_its_interval_and_follows_new_settings(loop: asyncio.AbstractEventLoop) -> None:
    clock = ManualClock()
    core = DaemonCore(loop, clock=clock, timers=manual_timers(clock))
    monitor = Monitor(core, sampler=Fake())  # type: ignore[arg-type]
    monitor.start()
    clock.advance(10.0)
    assert monitor.ticks == 1 and monitor.interval == 10.0
    core.set_settings({"monitor_interval": 2.0})
    clock.advance(10.0)
    assert monitor.ticks == 6 and monitor.interval == 2.0
