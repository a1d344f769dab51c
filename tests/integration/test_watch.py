"""Watch and restart with a real daemon and a real watch helper (``watchfiles``).

Two apps watch two folders.  What a test expects *not* to happen is checked the only way a real
file watcher allows: a later change that must restart the other app is waited for, and since the
helper reports changes in the order they happen, the earlier ones were handled by then.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from tests.conftest import APPS, Corral, pid_alive, wait_until

TICKER = str(APPS / "ticker.py")


def helpers(corral: Corral) -> list[int]:
    daemon = corral.daemon_pid()
    found = []
    for pid in corral.app_processes():
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().split(b"\0")
            with open(f"/proc/{pid}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        if b"corral.process.watcher" in cmdline and parent == daemon:
            found.append(pid)
    return found


def watch_events(corral: Corral, name: str) -> list[str]:
    return [e["message"] for e in corral.events(name) if e["kind"] == "watch"]


def restarts(corral: Corral, name: str) -> int:
    return int(corral.row(name)["restarts"])


def setup(corral: Corral, workdir: Path) -> Path:
    for folder in ("api", "other"):
        (workdir / folder).mkdir()
        (workdir / folder / "app.txt").write_text("1\n")
    (workdir / "corral.toml").write_text(
        f'[[apps]]\nname = "api"\nscript = "{TICKER}"\nargs = ["100"]\nwatch = ["api"]\nignore_watch = ["*.tmp"]\n'
        'watch_delay = "200ms"\nout_file = "api/api.log"\n'
        f'[[apps]]\nname = "other"\nscript = "{TICKER}"\nargs = ["1000"]\nwatch = "other"\n')
    corral.run("start", str(workdir / "corral.toml"))
    for name, folder in (("api", "api"), ("other", "other")):
        corral.wait_status(name, "online")
        wait_until(lambda n=name, f=folder: f"watching {f}" in watch_events(corral, n), 10, f"{name} watching")
    return workdir


def poke_other(corral: Corral, workdir: Path, expected: int) -> None:
    """A change only "other" watches: once it restarted, every earlier change was handled."""
    (workdir / "other" / "app.txt").write_text(f"{expected}\n")
    wait_until(lambda: restarts(corral, "other") == expected and corral.row("other")["status"] == "online",
               15, f"other restarted ({expected})")


def test_a_change_restarts_once_ignored_ones_never(corral: Corral, workdir: Path) -> None:
    setup(corral, workdir)
    pid = corral.row("api")["pid"]
    for i in range(20):  # a burst: one restart
        (workdir / "api" / f"gen-{i}.txt").write_text("x\n")
    wait_until(lambda: restarts(corral, "api") == 1 and corral.row("api")["status"] == "online", 15, "api restarted")
    assert not pid_alive(pid)
    poke_other(corral, workdir, 1)
    assert restarts(corral, "api") == 1
    (changed,) = [m for m in watch_events(corral, "api") if m.startswith("changed:")]
    assert changed.startswith("changed: api/gen-") and changed.endswith("; restarting")  # up to 5 named, "and N more"

    (workdir / "api" / "scratch.tmp").write_text("ignored\n")  # ignore_watch
    (workdir / "api" / ".hidden").mkdir()  # a list of one's own replaces PM2's default: not ignored ...
    (workdir / "api" / "__pycache__").mkdir()  # ... but Python's bytecode cache always is
    (workdir / "api" / "__pycache__" / "m.cpython-311.pyc").write_bytes(b"\0")
    wait_until(lambda: restarts(corral, "api") == 2 and corral.row("api")["status"] == "online", 15, "api again")
    poke_other(corral, workdir, 2)
    assert [m for m in watch_events(corral, "api") if m.startswith("changed:")][1:] == [
        "changed: api/.hidden; restarting"]
    assert (workdir / "api" / "api.log").stat().st_size > 0  # its own log, in the folder it watches, changes
    poke_other(corral, workdir, 3)  # ... and restarted nothing
    assert restarts(corral, "api") == 2


def test_a_stopped_app_stays_stopped_and_the_helper_ends_with_the_last_watcher(corral: Corral,
                                                                                workdir: Path) -> None:
    setup(corral, workdir)
    (helper,) = wait_until(lambda: helpers(corral), 5, "the watch helper")
    corral.run("stop", "api")
    (workdir / "api" / "app.txt").write_text("2\n")
    poke_other(corral, workdir, 1)
    assert corral.row("api")["status"] == "stopped"
    assert not [m for m in watch_events(corral, "api") if m.startswith("changed:")]

    corral.run("delete", "api")
    assert helpers(corral) == [helper]  # "other" still watches
    corral.run("delete", "other")
    wait_until(lambda: not pid_alive(helper), 10, "the helper to end")


def test_a_helper_that_dies_is_replaced(corral: Corral, workdir: Path) -> None:
    setup(corral, workdir)
    (helper,) = wait_until(lambda: helpers(corral), 5, "the watch helper")
    os.kill(helper, signal.SIGKILL)
    (second,) = wait_until(lambda: [p for p in helpers(corral) if p != helper], 15, "another helper")
    assert second != helper
    wait_until(lambda: watch_events(corral, "other").count("watching other") == 2, 10, "the new helper watching")
    poke_other(corral, workdir, 1)
