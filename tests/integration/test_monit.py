"""`corral monit` against a real daemon with real apps: textual's pilot drives the dashboard
(select, follow logs, search, restart with confirmation, scale, the timeline), and one run in a
real terminal through tmux.  The screen is read from its widgets' rendered text."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Awaitable, Callable

import pytest

from tests.conftest import APPS, ROOT, Corral, wait_until

pytest.importorskip("textual")

from textual.pilot import Pilot  # noqa: E402
from textual.widgets import DataTable, RichLog, Static  # noqa: E402

from corral.cli.tui.app import ConfirmScreen, Monit  # noqa: E402

DEADLINE = 30.0  # seconds: generous, the machine is shared


def start_tickers(corral: Corral, workdir: Path, *names: str, interval_ms: int = 200) -> None:
    apps = "".join(f"""
[[apps]]
name = "{name}"
script = "{APPS / 'ticker.py'}"
args = ["{interval_ms}"]
""" for name in names)
    path = workdir / "corral.toml"
    path.write_text('monitor_interval = "0.5s"\n' + apps)
    corral.run("start", str(path))
    for name in names:
        corral.wait_status(name, "online")


async def until(pilot: Pilot[Any], check: Callable[[], Any], what: str, timeout: float = DEADLINE) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await pilot.pause(0.05)


def table_text(app: Monit) -> list[str]:
    table = app.query_one("#table", DataTable)
    return [" ".join(str(cell) for cell in table.get_row_at(i)) for i in range(table.row_count)]


def log_text(app: Monit, pane: str = "#logs") -> list[str]:
    return [strip.text for strip in app.query_one(pane, RichLog).lines]


def static_text(app: Monit, selector: str) -> str:
    return str(app.query_one(selector, Static).render())


def drive(corral: Corral, scenario: Callable[[Monit, Pilot[Any]], Awaitable[None]]) -> None:
    os.environ["CORRAL_HOME"] = corral.home

    async def run() -> None:
        app = Monit()
        async with app.run_test(size=(160, 50)) as pilot:
            await scenario(app, pilot)
            await pilot.press("q")

    try:
        asyncio.run(run())
    finally:
        del os.environ["CORRAL_HOME"]


def test_monit_lists_apps_follows_the_selected_logs_and_searches_them(corral: Corral, workdir: Path) -> None:
    start_tickers(corral, workdir, "alpha", "beta")

    async def scenario(app: Monit, pilot: Pilot[Any]) -> None:
        rows = await until(pilot, lambda: len(table_text(app)) == 2 and table_text(app), "both apps in the table")
        assert rows[0].startswith("alpha 0 0 online") and rows[1].startswith("beta 1 0 online")
        assert str(corral.row("beta")["pid"]) in rows[1]
        assert static_text(app, "#summary").startswith("2 app(s), 2 instance(s), 2 online")
        await until(pilot, lambda: app.selected == "alpha", "the first app selected")
        await pilot.press("down")
        await until(pilot, lambda: app.selected == "beta", "beta selected")
        assert static_text(app, "#logtitle").startswith("logs of beta")
        first = await until(pilot, lambda: [line for line in log_text(app) if "tick" in line], "beta's logs")
        assert all(line.startswith("beta | ") or line.startswith("beta out | ") for line in first)
        newest = int(first[-1].split("tick ")[1].split()[0])
        # followed live: lines written after it opened arrive without a key press
        await until(pilot, lambda: any(f"tick {newest + 3} " in line for line in log_text(app)), "new log lines")
        await pilot.press("slash")
        await pilot.press(*"tick 1")
        shown = await until(pilot, lambda: (lines := log_text(app)) and all("tick 1" in x for x in lines) and lines,
                            "only the matching lines")
        assert len(shown) < len(app.logs.lines if app.logs else [])
        assert "search: tick 1" in static_text(app, "#logtitle")
        await pilot.press("escape")
        await until(pilot, lambda: any("tick 2" in line for line in log_text(app)), "every line back")

    drive(corral, scenario)


def test_restart_asks_first_then_the_pid_changes_in_ls(corral: Corral, workdir: Path) -> None:
    start_tickers(corral, workdir, "solo", interval_ms=500)
    before = corral.row("solo")["pid"]

    async def scenario(app: Monit, pilot: Pilot[Any]) -> None:
        await until(pilot, lambda: app.selected == "solo", "solo selected")
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the question")
        assert "restart solo?" in str(app.screen.query_one("#question", Static).render())
        await pilot.press("q")  # a no, not quit
        await until(pilot, lambda: "cancelled" in static_text(app, "#status"), "cancelled")
        assert app.is_running and not isinstance(app.screen, ConfirmScreen)
        assert (await asyncio.to_thread(corral.row, "solo"))["pid"] == before  # no means no
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the question again")
        await pilot.press("y")
        await until(pilot, lambda: "restart solo: done" in static_text(app, "#status"), "the restart done")
        row = await asyncio.to_thread(corral.row, "solo")
        assert row["pid"] != before and row["status"] == "online"
        # the table follows the stream: the new pid shows without a key press
        await until(pilot, lambda: any(str(row["pid"]) in r for r in table_text(app)), "the new pid on screen")
        await until(pilot, lambda: any(" restart " in f" {line} " for line in log_text(app, "#timeline")),
                    "the restart on the timeline")

    drive(corral, scenario)


def test_reload_asks_first_then_replaces_the_instance(corral: Corral, workdir: Path) -> None:
    start_tickers(corral, workdir, "smooth", interval_ms=500)
    before = corral.row("smooth")["pid"]

    async def scenario(app: Monit, pilot: Pilot[Any]) -> None:
        await until(pilot, lambda: app.selected == "smooth", "smooth selected")
        await pilot.press("R")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the question")
        assert "reload (rolling, zero-downtime) smooth?" in str(app.screen.query_one("#question", Static).render())
        await pilot.press("y")
        await until(pilot, lambda: "reload smooth: done" in static_text(app, "#status"), "the reload done")
        row = await asyncio.to_thread(corral.row, "smooth")
        assert row["pid"] != before and row["status"] == "online"

    drive(corral, scenario)


def test_scale_up_with_confirmation_adds_a_row(corral: Corral, workdir: Path) -> None:
    start_tickers(corral, workdir, "wide", interval_ms=1000)

    async def scenario(app: Monit, pilot: Pilot[Any]) -> None:
        await until(pilot, lambda: app.selected == "wide", "wide selected")
        await pilot.press("plus")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the question")
        assert "scale wide from 1 to 2 instance(s)?" in str(app.screen.query_one("#question", Static).render())
        await pilot.press("y")
        await until(pilot, lambda: len(table_text(app)) == 2, "a second instance in the table")
        assert len(await asyncio.to_thread(corral.ls)) == 2

    drive(corral, scenario)


def test_an_action_the_daemon_refuses_is_its_one_line_reason(corral: Corral, workdir: Path) -> None:
    corral.env["CORRAL_MAX_INSTANCES"] = "1"  # the daemon's limit
    start_tickers(corral, workdir, "capped", interval_ms=1000)

    async def scenario(app: Monit, pilot: Pilot[Any]) -> None:
        await until(pilot, lambda: app.selected == "capped", "capped selected")
        await pilot.press("plus")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the question")
        await pilot.press("y")
        await until(pilot, lambda: "at most 1" in static_text(app, "#status"), "the refusal")
        assert static_text(app, "#status") == "scale: capped would have 2 instances (at most 1)"
        assert app.is_running and len(table_text(app)) == 1

    drive(corral, scenario)


def test_stop_then_start_each_asked_first(corral: Corral, workdir: Path) -> None:
    start_tickers(corral, workdir, "onoff", interval_ms=1000)

    async def scenario(app: Monit, pilot: Pilot[Any]) -> None:
        await until(pilot, lambda: app.selected == "onoff", "onoff selected")
        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the question")
        assert "stop onoff?" in str(app.screen.query_one("#question", Static).render())
        await pilot.press("y")
        await until(pilot, lambda: table_text(app) and " stopped " in table_text(app)[0], "stopped in the table")
        assert (await asyncio.to_thread(corral.row, "onoff"))["status"] == "stopped"
        await pilot.press("S")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the question")
        await pilot.press("y")
        await until(pilot, lambda: table_text(app) and " online " in table_text(app)[0], "online again")

    drive(corral, scenario)


def test_the_timeline_says_why_a_crashing_app_restarted(corral: Corral, workdir: Path) -> None:
    (workdir / "corral.toml").write_text(f"""
[[apps]]
name = "crashy"
script = "{APPS / 'crash.py'}"
restart_delay = "1s"
""")
    corral.run("start", str(workdir / "corral.toml"))
    wait_until(lambda: [e for e in corral.events("crashy") if e["kind"] == "crash"], DEADLINE, "a crash")

    async def scenario(app: Monit, pilot: Pilot[Any]) -> None:
        await until(pilot, lambda: app.selected == "crashy", "crashy selected")
        await until(pilot, lambda: any(" crash " in line for line in log_text(app, "#timeline")), "the crash")
        title = static_text(app, "#timetitle")
        assert title.startswith("timeline of crashy  last: ") and " crash " in title

    drive(corral, scenario)


# -- the command itself ----------------------------------------------------------------------------
def test_without_a_daemon_monit_says_so_in_one_line(corral: Corral) -> None:
    proc = corral.run("monit", check=False)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr == (f"corral: no daemon is running for {corral.home}: nothing to show yet "
                           "(`corral start app.py` or `corral resurrect` starts it)\n")


def test_monit_without_a_terminal_says_so_and_draws_nothing(corral: Corral, workdir: Path) -> None:
    start_tickers(corral, workdir, "piped", interval_ms=1000)
    proc = corral.run("monit", check=False)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == ("corral: `corral monit` draws on a terminal: run it in one (`corral ls` and "
                           "`corral events --follow` print to pipes)\n")


def test_without_textual_monit_says_how_to_install_it(corral: Corral) -> None:
    code = ("import sys; sys.modules['textual'] = None; from corral.cli.entry import main; "
            "sys.exit(main(['dash']))")
    proc = subprocess.run([sys.executable, "-c", code], env=corral.env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr == ("corral: `corral monit` needs textual, an optional dependency: install it with "
                           "`pip install 'corral[tui]'` (scripts/setup does)\n")


def test_ls_and_the_other_verbs_never_import_textual(corral: Corral, workdir: Path) -> None:
    start_tickers(corral, workdir, "quiet", interval_ms=1000)
    for argv in (["ls"], ["describe", "quiet"], ["events", "quiet"], ["metrics"]):
        proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "corral", *argv], env=corral.env,
                              capture_output=True, text=True, timeout=60, check=True)
        loaded = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
        assert not {m for m in loaded if m.split(".")[0] in ("textual", "rich")}, argv


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (scripts/setup test installs it)")
def test_monit_in_a_real_terminal_shows_the_apps_and_q_quits(corral: Corral, workdir: Path) -> None:
    start_tickers(corral, workdir, "first-app", "second-app", interval_ms=1000)
    server = f"corral-test-{uuid.uuid4().hex[:8]}"  # a tmux server of our own
    status = workdir / "status"
    command = (f"cd {ROOT} && CORRAL_HOME={corral.home} {sys.executable} -m corral monit; "
               f"echo $? > {status}")
    tmux = ["tmux", "-L", server]
    subprocess.run([*tmux, "new-session", "-d", "-x", "160", "-y", "50", command], check=True, timeout=30)
    try:
        def screen() -> str:
            return subprocess.run([*tmux, "capture-pane", "-p"], capture_output=True, text=True, timeout=30).stdout

        shown = wait_until(lambda: "second-app" in (text := screen()) and "q quit" in text and text, DEADLINE,
                           "the apps on the terminal")
        assert "first-app" in shown and "2 app(s), 2 instance(s), 2 online" in shown
        assert "q quit" in shown and "r restart" in shown
        # typed in one burst, as a fast typist or a paste does: every key after the slash is the search's
        subprocess.run([*tmux, "send-keys", "/tick"], check=True, timeout=30)
        wait_until(lambda: "search: tick" in screen(), DEADLINE, "the search on the screen")
        subprocess.run([*tmux, "send-keys", "Escape"], check=True, timeout=30)
        wait_until(lambda: "(/ to search)" in screen(), DEADLINE, "the search cleared")
        subprocess.run([*tmux, "send-keys", "q"], check=True, timeout=30)
        wait_until(status.exists, DEADLINE, "monit to exit on q")
        assert wait_until(lambda: status.read_text().strip(), 5, "its exit status") == "0"
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True, timeout=30)
