"""Process-tree faults: helpers that leave their process group are ended by stop, delete, kill,
and by the next daemon after a SIGKILL; with a cgroup per instance and with the marker alone."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from tests.conftest import Corral, app, pid_alive, wait_until

MARKER = "CORRAL_INSTANCE_ID"


def cgroups_here() -> str | None:
    """None if this test may create cgroups (root, cgroup v2 writable), else the reason."""
    from corral.process.cgroups import Cgroups

    found, why = Cgroups.detect(f"test-probe-{os.getpid()}")
    if found is None:
        return why
    found.close()
    return None


NO_CGROUPS = cgroups_here()
TRACKING = ["marker", pytest.param("cgroup", marks=pytest.mark.skipif(
    NO_CGROUPS is not None, reason=f"cannot create cgroups here: {NO_CGROUPS}"))]


def markers_of(pids: list[int]) -> set[str]:
    found = set()
    for pid in pids:
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:  # gone already (a crash loop)
            continue
        found.update(e.split(b"=", 1)[1].decode() for e in env if e.startswith(MARKER.encode() + b"="))
    return found


def carrying(markers: set[str]) -> list[int]:
    """Live processes whose environment holds one of MARKERS."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            env = Path(f"/proc/{name}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(f"{MARKER}={m}".encode() in env for m in markers) and pid_alive(int(name)):
            out.append(int(name))
    return out


def start_escaper(corral: Corral, workdir: Path, tracking: str, mode: str, *flags: str,
                  kill_timeout: str = "1s") -> tuple[list[int], set[str]]:
    """Start an app whose helper escapes its group; (helper and main pids, their markers)."""
    if tracking == "marker":
        corral.env["CORRAL_CGROUPS"] = "0"
    pids = workdir / "pids"
    corral.run("start", app("escape.py"), "--name", "esc", "--kill-timeout", kill_timeout, "--",
               str(pids), mode, *flags)
    got = wait_until(lambda: pids.exists() and len(pids.read_text().split()) >= 2 and pids.read_text().split(),
                     what="the helper and the main process")
    info = json.loads(corral.run("ping", "--json").stdout)
    assert info["tracking"] == tracking
    helper, main = int(got[0]), int(got[1])
    if "--exit" not in flags:
        assert os.getpgid(helper) != os.getpgid(main)  # it did leave the group
    return [helper, main], markers_of([helper, main])


MODES = [("setsid",), ("setpgid",), ("double",), ("setsid", "--helper-ignores-term")]


@pytest.mark.parametrize("tracking", TRACKING)
@pytest.mark.parametrize("mode", MODES, ids="-".join)
@pytest.mark.parametrize("action", ["stop", "delete", "kill"])
def test_escaped_helpers_are_ended(corral: Corral, workdir: Path, tracking: str, mode: tuple[str, ...],
                                   action: str) -> None:
    pids, markers = start_escaper(corral, workdir, tracking, *mode)
    assert len(markers) == 1 and carrying(markers)
    corral.run(action, *([] if action == "kill" else ["esc"]))
    assert not [p for p in pids if pid_alive(p)]
    assert carrying(markers) == []  # the command returns once every process of the instance is gone
    if action == "stop":
        assert corral.row("esc")["status"] == "stopped"


@pytest.mark.parametrize("tracking", TRACKING)
@pytest.mark.parametrize("mode", MODES, ids="-".join)
def test_escaped_helpers_are_ended_after_a_daemon_sigkill(corral: Corral, workdir: Path, tracking: str,
                                                          mode: tuple[str, ...]) -> None:
    pids, markers = start_escaper(corral, workdir, tracking, *mode)
    daemon = corral.daemon_pid()
    assert daemon
    corral.expect_daemon_restart()
    os.kill(daemon, signal.SIGKILL)
    wait_until(lambda: not pid_alive(daemon), what="the daemon to die")
    assert all(pid_alive(p) for p in pids)  # orphans now, re-parented away from the dead daemon
    corral.run("ping")  # the next daemon ends them before it answers
    assert not [p for p in pids if pid_alive(p)]
    assert carrying(markers) == []
    row = corral.wait_status("esc", "online")
    assert row["pid"] not in pids
    kinds = [e["kind"] for e in corral.events("esc")]
    assert "recovered" in kinds


@pytest.mark.parametrize("tracking", TRACKING)
def test_a_crash_loop_does_not_leave_its_helpers_behind(corral: Corral, workdir: Path, tracking: str) -> None:
    """Each run daemonizes a helper and exits: the helper is ended with what is left of the run."""
    start_escaper(corral, workdir, tracking, "setsid", "--exit")
    lines = workdir / "pids"
    wait_until(lambda: len(lines.read_text().split()) >= 8, what="a few crashed runs")
    corral.run("stop", "esc")
    every = [int(p) for p in lines.read_text().split()]
    assert not [p for p in every if pid_alive(p)]


@pytest.mark.skipif(NO_CGROUPS is not None, reason=f"cannot create cgroups here: {NO_CGROUPS}")
@pytest.mark.parametrize("action", ["stop", "sigkill"])
def test_a_cgroup_finds_a_helper_that_dropped_its_environment(corral: Corral, workdir: Path, action: str) -> None:
    """A helper without the marker (a clean environment) outside the group: only the cgroup has it."""
    pids, markers = start_escaper(corral, workdir, "cgroup", "setsid", "--clean-env")
    helper = pids[0]
    wait_until(lambda: Path(f"/proc/{helper}/environ").read_bytes() == b"", what="the helper's exec")
    cgroup = Path(f"/proc/{helper}/cgroup").read_text().strip().split("::")[-1]
    assert cgroup.endswith("/" + next(iter(markers)))
    if action == "stop":
        corral.run("stop", "esc")
    else:
        daemon = corral.daemon_pid()
        assert daemon
        corral.expect_daemon_restart()
        os.kill(daemon, signal.SIGKILL)
        wait_until(lambda: not pid_alive(daemon), what="the daemon to die")
        corral.run("ping")
    assert not [p for p in pids if pid_alive(p)]


@pytest.mark.skipif(NO_CGROUPS is not None, reason=f"cannot create cgroups here: {NO_CGROUPS}")
def test_a_cgroup_the_store_lost_is_still_emptied(corral: Corral, workdir: Path) -> None:
    """The next daemon empties every cgroup of its home, recorded or not (a lost state write)."""
    import sqlite3

    pids, _ = start_escaper(corral, workdir, "cgroup", "double")
    daemon = corral.daemon_pid()
    assert daemon
    corral.expect_daemon_restart()
    os.kill(daemon, signal.SIGKILL)
    wait_until(lambda: not pid_alive(daemon), what="the daemon to die")
    db = sqlite3.connect(os.path.join(corral.home, "state.db"))
    db.execute("DELETE FROM trees")
    db.execute("DELETE FROM slots")
    db.commit()
    db.close()
    corral.run("ping")
    assert not [p for p in pids if pid_alive(p)]
