"""Crash loops, backoff timing, max_restarts, min_uptime, autorestart modes: with real processes."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Corral, app, wait_until


def write_app(workdir: Path, body: str) -> str:
    path = workdir / "corral.toml"
    path.write_text(body)
    return str(path)


def gaps(events: list[dict]) -> list[float]:
    """Seconds from each exit to the next spawn."""
    out = []
    last_exit = None
    for ev in events:
        if ev["kind"] == "exit":
            last_exit = ev["ts"]
        elif ev["kind"] == "spawn" and last_exit is not None:
            out.append(ev["ts"] - last_exit)
            last_exit = None
    return out


def test_crash_loop_backs_off_exponentially_and_is_reported(corral: Corral, workdir: Path) -> None:
    corral.run("start", write_app(workdir, f"""
[[apps]]
name = "loop"
script = "{app('crash.py')}"
args = ["1", "0"]
exp_backoff_restart_delay = "40ms"
"""))
    events = wait_until(
        lambda: (evs := corral.events("loop")) and any(e["kind"] == "crash_loop" for e in evs) and evs,
        timeout=40, what="the crash-loop event")
    measured = gaps(events)[:9]
    # first restart immediate, then 40ms, 80ms, 160ms ... doubling (each +/- process start-up jitter)
    expected = [0.0] + [0.04 * 2 ** i for i in range(8)]
    for got, want in zip(measured, expected):
        assert want * 0.9 - 0.01 <= got <= want + 0.25, (measured, expected)
    crash_loop = [e for e in events if e["kind"] == "crash_loop"]
    assert len(crash_loop) == 1 and "10 consecutive" in crash_loop[0]["message"]
    row = corral.row("loop")
    assert row["status"] in ("waiting_restart", "launching", "online")  # never gives up by default


def test_max_restarts_ends_in_errored(corral: Corral, workdir: Path) -> None:
    corral.run("start", write_app(workdir, f"""
[[apps]]
name = "flaky"
script = "{app('crash.py')}"
args = ["2", "0"]
max_restarts = 3
exp_backoff_restart_delay = "10ms"
"""))
    row = corral.wait_status("flaky", "errored", timeout=20)
    assert row["restarts"] == 3 and row["pid"] is None
    assert [e["kind"] for e in corral.events("flaky")].count("spawn") == 4


def test_a_run_longer_than_min_uptime_resets_the_backoff(corral: Corral, workdir: Path) -> None:
    corral.run("start", write_app(workdir, f"""
[[apps]]
name = "slowcrash"
script = "{app('crash.py')}"
args = ["1", "400"]
min_uptime = "200ms"
exp_backoff_restart_delay = "2s"
"""))
    wait_until(lambda: corral.row("slowcrash")["restarts"] >= 4, timeout=20, what="four restarts")
    # every run outlived min_uptime, so every restart was immediate: no 2s backoff ever applied
    assert all(g < 0.5 for g in gaps(corral.events("slowcrash")))


def test_autorestart_false_leaves_a_clean_exit_stopped_and_a_crash_errored(corral: Corral, workdir: Path) -> None:
    corral.run("start", write_app(workdir, f"""
[[apps]]
name = "once-ok"
script = "{app('crash.py')}"
args = ["0", "0"]
autorestart = false
[[apps]]
name = "once-bad"
script = "{app('crash.py')}"
args = ["5", "0"]
autorestart = false
"""))
    assert corral.wait_status("once-ok", "stopped")["restarts"] == 0
    assert corral.wait_status("once-bad", "errored")["restarts"] == 0


def test_on_failure_and_stop_exit_codes(corral: Corral, workdir: Path) -> None:
    corral.run("start", write_app(workdir, f"""
[[apps]]
name = "done"
script = "{app('crash.py')}"
args = ["0", "0"]
autorestart = "on-failure"
[[apps]]
name = "expected"
script = "{app('crash.py')}"
args = ["3", "0"]
stop_exit_codes = [3]
[[apps]]
name = "failing"
script = "{app('crash.py')}"
args = ["4", "0"]
autorestart = "on-failure"
"""))
    assert corral.wait_status("done", "stopped")["restarts"] == 0
    assert corral.wait_status("expected", "stopped")["restarts"] == 0
    wait_until(lambda: corral.row("failing")["restarts"] >= 2, what="on-failure restarts")


def test_an_unrunnable_program_is_errored_with_the_reason(corral: Corral) -> None:
    result = corral.run("start", "--name", "nope", "--", "/nonexistent/program", check=False)
    assert result.returncode == 1
    assert corral.row("nope")["status"] == "errored"
    messages = [e["message"] for e in corral.events("nope") if e["kind"] == "spawn_failed"]
    assert messages and "/nonexistent/program" in messages[0] and "No such file" in messages[0]
