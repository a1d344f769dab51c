"""State that never lies (issue 8): a state.db on a full disk, damaged rows, a damaged file, and
daemon.log rotation, against a real daemon."""

from __future__ import annotations

import errno
import json
import os
import signal
import sqlite3
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pytest

from corral.logs.rotation import rotated_files
from tests.conftest import PYTHON, Corral, app, pid_alive, wait_until
from tests.integration.test_recovery import instances_of


def _kill_daemon(corral: Corral) -> None:
    daemon = corral.daemon_pid()
    assert daemon
    corral.expect_daemon_restart()
    os.kill(daemon, signal.SIGKILL)
    wait_until(lambda: not pid_alive(daemon), what="the daemon to die")


def _edit(corral: Corral, *statements: str) -> None:
    db = sqlite3.connect(str(Path(corral.home, "state.db")))
    for sql in statements:
        db.execute(sql)
    db.commit()
    db.close()


def running_commands(corral: Corral) -> list[bytes]:
    found = []
    for pid in corral.app_processes():
        try:
            found.append(Path(f"/proc/{pid}/cmdline").read_bytes())
        except OSError:
            continue
    return sorted(found)


def _log(corral: Corral) -> str:
    return Path(corral.home, "daemon.log").read_text(errors="replace")


# -- damaged rows ---------------------------------------------------------------------------------
DAMAGED = {
    "notjson": ("spec = '{\"name\": \"notjson\", '",
                "not valid JSON (Expecting property name enclosed in double quotes: line 1 column 21 (char 20))"),
    "notobject": ("spec = '[1, 2]'", "not a JSON object (a JSON list)"),
    "deep": ("spec = '" + "[" * 100_000 + "'", "not valid JSON (nested too deeply)"),
    "badid": ("id = 'x'", "its id is not a number ('x')"),
    "other": ("spec = json_set(spec, '$.name', 'good')", "it is the spec of another app ('good')"),
}


def test_damaged_rows_are_listed_as_skipped_and_can_be_deleted(corral: Corral) -> None:
    corral.run("start", "--name", "good", "--", "sleep", "600")
    for i, name in enumerate(DAMAGED):
        corral.run("start", "--name", name, "--", "sleep", str(601 + i))
    _kill_daemon(corral)
    _edit(corral, *(f"UPDATE apps SET {change} WHERE name = '{name}'" for name, (change, _) in DAMAGED.items()))
    corral.run("ping")
    corral.wait_status("good", "online")
    reasons = {name: f"stored spec does not load, app left out: {why}" for name, (_, why) in DAMAGED.items()}
    rows = corral.ls()
    assert rows[0]["name"] == "good"
    assert {r["name"]: (r["status"], r["pid"], r["reason"]) for r in rows[1:]} == {
        name: ("skipped", None, reason) for name, reason in reasons.items()}
    assert {e["app"]: e["message"] for e in corral.events() if e["kind"] == "skipped"} == reasons
    log = _log(corral)
    assert "Traceback" not in log
    for name, reason in reasons.items():
        assert [line.split(" ERROR ")[1] for line in log.splitlines() if f"app {name}:" in line] == [
            f"app {name}: {reason}"]
    assert running_commands(corral) == [b"sleep\x00600\x00"]  # a skipped app's old process did not stay
    table = corral.run("ls").stdout.splitlines()
    assert f"notobject: {reasons['notobject']} (`corral delete notobject` removes it)" in table
    described = corral.run("describe", "notjson", check=False)
    assert (described.returncode, described.stderr) == (
        2, f'corral: app "notjson" was left out when the daemon started ({reasons["notjson"]}): `corral delete '
           'notjson` removes it, a `corral start` of that name replaces it\n')

    assert corral.run("delete", "notjson").stdout == "deleted: notjson\n"
    corral.run("delete", "notobject")
    corral.run("start", "--name", "deep", "--", "sleep", "610")  # a valid spec replaces the damaged row
    _kill_daemon(corral)
    corral.run("ping")
    corral.wait_status("deep", "online")
    assert [(r["name"], r["status"]) for r in corral.ls()] == [
        ("good", "online"), ("deep", "online"), ("other", "skipped"), ("badid", "skipped")]
    skipped_now = [e["app"] for e in corral.events(lines=1000) if e["kind"] == "skipped"]
    assert sorted(skipped_now) == sorted([*DAMAGED, "badid", "other"])  # two daemons: the second saw two
    corral.run("delete", "all")
    assert corral.ls() == []
    db = sqlite3.connect(str(Path(corral.home, "state.db")))
    assert db.execute("SELECT COUNT(*) FROM apps").fetchone() == (0,)
    db.close()


# -- a damaged or unusable file -------------------------------------------------------------------
def test_a_state_db_of_garbage_is_moved_aside_and_the_daemon_starts_empty(corral: Corral) -> None:
    garbage = b"this is not a database\n" * 500
    Path(corral.home, "state.db").write_bytes(garbage)
    ping = corral.run("ping")
    store = json.loads(corral.run("ping", "--json").stdout)["store"]
    moved = Path(store["moved_aside"])
    assert moved.parent == Path(corral.home) and moved.name.startswith("state.db.corrupt-")
    assert moved.read_bytes() == garbage and moved.stat().st_mode & 0o777 == 0o600
    assert ping.stderr == (f"corral: state.db was not a usable database: moved to {moved}, the daemon started "
                           "with no apps\n")
    errors = [line.split(" ERROR ")[1] for line in _log(corral).splitlines() if " ERROR " in line]
    assert errors == [f"state.db: {corral.home}/state.db is not a usable database (file is not a database): "
                      f"moved to {moved}; the daemon starts with no apps (`corral resurrect` brings back the last "
                      "`corral save`)"]
    assert corral.ls() == []
    corral.run("start", "--name", "fresh", "--", "sleep", "600")  # the new file works
    corral.wait_status("fresh", "online")


def test_a_truncated_state_db_is_moved_aside(corral: Corral) -> None:
    for i in range(3):
        corral.run("start", "--name", f"app{i}", "--", "sleep", "600")
    corral.run("stop", "all")  # nothing left running for the lost file to have known about
    _kill_daemon(corral)
    path = Path(corral.home, "state.db")
    db = sqlite3.connect(str(path))
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    size = path.stat().st_size
    assert size >= 5 * 4096
    os.truncate(path, 3 * 4096)
    corral.run("ping")
    store = json.loads(corral.run("ping", "--json").stdout)["store"]
    assert Path(store["moved_aside"]).stat().st_size == 3 * 4096
    assert "is not a usable database (database disk image is malformed)" in _log(corral)
    assert corral.ls() == []


def test_a_state_db_that_cannot_be_opened_is_one_line(corral: Corral) -> None:
    os.mkdir(Path(corral.home, "state.db"))
    result = corral.run("ping", check=False)
    assert result.returncode == 1
    assert result.stderr.startswith(f"corral: the daemon did not start (see {corral.home}/daemon.log): ")
    assert result.stderr.rstrip().endswith(f"corral: cannot use the state database {corral.home}/state.db: "
                                           "it is a folder")
    assert Path(corral.home, "state.db").is_dir() and "Traceback" not in _log(corral)


# -- daemon.log rotation --------------------------------------------------------------------------
def _daemon_logs(corral: Corral) -> list[Path]:
    """The rotated daemon logs, oldest first, then daemon.log."""
    path = os.path.join(corral.home, "daemon.log")
    return [Path(f.path) for f in rotated_files(path)] + [Path(path)]


def test_daemon_log_rotates_by_size_and_keeps_a_few(corral: Corral) -> None:
    corral.env.update(CORRAL_DAEMON_LOG_MAX_SIZE="4KB", CORRAL_DAEMON_LOG_RETAIN="2")
    log = Path(corral.home, "daemon.log")
    old = "".join(f"an old line {i:04d} of a daemon.log never rotated\n" for i in range(100)).encode()
    log.write_bytes(old)  # 4.9 KB: the first line the new daemon logs rotates it
    corral.run("ping")
    daemon = corral.daemon_pid()
    first, current = _daemon_logs(corral)
    assert first.read_bytes() == old  # every old line, and only them
    assert b"corral daemon" in current.read_bytes() and len(current.read_bytes()) < 4096
    assert {first.stat().st_mode & 0o777, current.stat().st_mode & 0o777} == {0o600}

    dump = Path(corral.home, "dump.json")
    written = []
    for round_ in range(3):  # others write to the daemon's stderr too; the daemon's next line rotates
        extra = "".join(f"round {round_} line {i:03d} written by someone else\n" for i in range(120))
        with open(log, "a") as f:
            f.write(extra)
        written.append(extra)
        dump.write_text(json.dumps({"version": 1, "apps": [{"spec": {"name": f"bad{round_}", "stop_signal": "KILL"}}]}))
        corral.run("resurrect", check=False)  # one daemon.log line: the entry skipped
    assert corral.daemon_pid() == daemon
    files = _daemon_logs(corral)
    assert len(files) == 3  # two rotated files kept, and the current one
    text = [f.read_text() for f in files]
    assert text[0].endswith(written[1]) and "bad1" in text[1] and text[1].endswith(written[2])
    assert "bad2" in text[2] and len(text[2].splitlines()) == 1
    assert "round 0" not in "".join(text)  # the oldest rotated file went (kept: 2)


def test_daemon_log_swapped_for_a_link_is_never_written_through(corral: Corral, workdir: Path) -> None:
    corral.env.update(CORRAL_DAEMON_LOG_MAX_SIZE="4KB")
    corral.run("ping")
    daemon = corral.daemon_pid()
    log, victim = Path(corral.home, "daemon.log"), workdir / "victim"
    victim.write_text("precious\n")
    os.rename(log, Path(corral.home, "daemon.log.moved"))
    os.symlink(victim, log)  # someone swaps the log for a link to another file
    with open(Path(corral.home, "daemon.log.moved"), "a") as f:
        f.write("x" * 5000 + "\n")  # the daemon's stderr is over the limit
    dump = Path(corral.home, "dump.json")
    dump.write_text(json.dumps({"version": 1, "apps": [{"spec": {"name": "bad", "stop_signal": "KILL"}}]}))
    corral.run("resurrect", check=False)  # a line: the rotation looks, and leaves a link alone
    assert victim.read_text() == "precious\n" and log.is_symlink() and corral.daemon_pid() == daemon
    assert "'bad': skipped" in Path(corral.home, "daemon.log.moved").read_text()
    log.unlink()


def test_a_bad_daemon_log_setting_is_one_line(corral: Corral) -> None:
    result = corral.run("ping", check=False, env={"CORRAL_DAEMON_LOG_MAX_SIZE": "12 parsecs"})
    assert result.returncode == 1
    assert result.stderr.rstrip().endswith(
        'corral: CORRAL_DAEMON_LOG_MAX_SIZE: "12 parsecs" is not a size from 1KB to 1TB (or 0: never rotate)')


# -- a full disk ----------------------------------------------------------------------------------
@contextmanager
def small_disk(corral: Corral, size: str) -> Iterator[None]:
    """CORRAL_HOME on a tmpfs of ``size``; everything stopped and unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs for CORRAL_HOME needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", corral.home],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield
    finally:
        filler = Path(corral.home, "filler")
        if filler.exists():
            filler.unlink()
        corral.run("kill", check=False)
        daemon = corral.daemon_pid()
        if daemon:
            os.kill(daemon, signal.SIGKILL)
            wait_until(lambda: not pid_alive(daemon), what="the daemon to die")
        subprocess.run(["umount", "-l", corral.home], check=False)


def fill(path: Path) -> None:
    """Take every free byte of the file system."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        for size in (1 << 20, 1 << 16, 4096, 256, 1):
            block = b"\0" * size
            while True:
                try:
                    os.write(fd, block)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
    finally:
        os.close(fd)


def true_rows(corral: Corral, moving: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """``ls``, checked: an instance shown with a pid has that process alive, and one online has a
    pid (``moving``: apps crash-looping right now, whose pid may be a moment old)."""
    rows = corral.ls()
    for r in rows:
        if r["name"] in moving:
            continue
        assert r["pid"] is None or pid_alive(r["pid"]), f"{r['name']} shown with a dead pid {r['pid']}"
        assert r["status"] != "online" or r["pid"], f"{r['name']} online without a process"
    return rows


def store_status(corral: Corral) -> dict[str, Any]:
    status: dict[str, Any] = json.loads(corral.run("ping", "--json").stdout)["store"]
    return status


#: runs until FLAG exists, then exits 3 (at once, if it exists when it starts)
CRASH_ON_FLAG = "import os, sys, time\nwhile not os.path.exists(sys.argv[1]): time.sleep(0.02)\nsys.exit(3)"
QUIET = ("-o", "/dev/null", "-e", "/dev/null")  # app logs on a full disk are another piece: not on this one


def test_a_full_disk_never_stops_the_daemon_and_it_catches_up(corral: Corral, workdir: Path) -> None:
    flag = workdir / "crash-now"
    with small_disk(corral, "16m"):
        home = Path(corral.home)
        corral.run("ping")
        subprocess.run(["fallocate", "-n", "-l", "256K", str(home / "daemon.log")], check=True)  # room to say so
        daemon = corral.daemon_pid()
        corral.run("start", "--name", "crasher", *QUIET, "--", PYTHON, "-c", CRASH_ON_FLAG, str(flag))
        corral.run("start", "--name", "looper", *QUIET, "--", PYTHON, app("crash.py"), "1", "1100")  # no backoff
        corral.run("start", "--name", "steady", *QUIET, "--", "sleep", "600")
        steady = corral.wait_status("steady", "online")["pid"]
        corral.wait_status("crasher", "online")
        wait_until(lambda: corral.row("looper")["restarts"] >= 2, what="looper restarting")

        fill(home / "filler")
        flag.touch()  # the crasher crashes: a write the disk refuses, a restart the daemon puts off
        wait_until(lambda: store_status(corral)["ok"] is False, what="the store to say it cannot save")
        status = store_status(corral)
        assert status["error"] == "database or disk is full" and status["pending"] > 0
        wait_until(lambda: corral.row("crasher")["status"] == corral.row("looper")["status"] == "waiting_restart",
                   what="crasher and looper put off")
        corral.run("stop", "steady")
        started = corral.run("start", "--name", "late", *QUIET, "--", "sleep", "601", check=False)
        assert started.returncode == 1
        assert ("corral: late[0]: not started: the state database does not take writes (database or disk is "
                "full): waiting until it does (never a copy the next daemon could not find)") in started.stderr
        rows = {r["name"]: (r["status"], r["pid"]) for r in true_rows(corral)}
        assert rows == {"crasher": ("waiting_restart", None), "looper": ("waiting_restart", None),
                        "steady": ("stopped", None), "late": ("waiting_restart", None)}
        assert not pid_alive(steady)
        described = json.loads(corral.run("describe", "crasher", "--json").stdout)
        assert described["store"]["ok"] is False
        kinds = [e["kind"] for e in described["events"]]
        assert "crash" in kinds[kinds.index("spawn") + 1:] and kinds[-1] == "spawn_failed"  # kept in memory, shown
        assert "corral: the daemon's state is not being saved since " in corral.run("ping").stderr
        saved = corral.run("save", check=False)
        assert (saved.returncode, saved.stderr) == (1, f"corral: cannot save to {home}/dump.json: No space left on "
                                                       "device (the previous save is kept)\n")

        flag.unlink()
        (home / "filler").unlink()  # space returns: everything resumes by itself
        wait_until(lambda: store_status(corral)["ok"], 15, what="the store to catch up")
        wait_until(lambda: {r["name"]: r["status"] for r in true_rows(corral, moving=("looper",))
                            if r["name"] != "looper"} == {"crasher": "online", "steady": "stopped", "late": "online"},
                   15, what="the apps to resume")
        wait_until(lambda: corral.row("looper")["pid"], what="looper running again")
        assert corral.daemon_pid() == daemon
        assert store_status(corral) == {"ok": True, "pending": 0, "events_dropped": 0}
        log = _log(corral)
        assert "Traceback" not in log
        assert len([line for line in log.splitlines() if "state.db: cannot save the daemon's state "
                    "(database or disk is full)" in line]) == 1
        assert len([line for line in log.splitlines() if "state.db: the daemon's state is saved again" in line]) == 1

        before = {r["name"]: r["pid"] for r in true_rows(corral, moving=("looper",))}
        _kill_daemon(corral)  # what the next daemon reads is what this one showed
        corral.run("ping")
        wait_until(lambda: {r["name"]: r["status"] for r in true_rows(corral, moving=("looper",))
                            if r["name"] != "looper"} == {"crasher": "online", "steady": "stopped", "late": "online"},
                   15, what="the apps restored")
        assert len(instances_of(corral, "late")) == 1 and len(instances_of(corral, "crasher")) == 1
        assert instances_of(corral, "steady") == [] and len(instances_of(corral, "looper")) <= 1
        assert not [p for p in before.values() if p and pid_alive(p)]


def test_a_daemon_killed_while_the_disk_is_full_leaves_no_copy_behind(corral: Corral, workdir: Path) -> None:
    """Its changes kept in memory die with it, but no process was started without its record."""
    flag = workdir / "crash-now"
    with small_disk(corral, "16m"):
        home = Path(corral.home)
        corral.run("start", "--name", "crasher", *QUIET, "--", PYTHON, "-c", CRASH_ON_FLAG, str(flag))
        corral.run("start", "--name", "web", "-i", "2", *QUIET, "--", "sleep", "600")
        wait_until(lambda: len(instances_of(corral, "web")) == 2, what="two web instances")
        web: list[int] = [r["pid"] for r in corral.ls() if r["name"] == "web" and r["pid"]]
        assert len(web) == 2
        fill(home / "filler")
        flag.touch()
        wait_until(lambda: corral.row("crasher")["status"] == "waiting_restart", what="the crasher put off")
        corral.run("scale", "web", "4", check=False)  # two more: put off as well
        assert sorted(r["pid"] for r in corral.ls() if r["name"] == "web" and r["pid"]) == sorted(web)
        assert len(instances_of(corral, "web")) == 2
        _kill_daemon(corral)
        flag.unlink()
        (home / "filler").unlink()
        corral.run("ping")
        wait_until(lambda: len(instances_of(corral, "web")) == 2 and len(instances_of(corral, "crasher")) == 1,
                   15, what="web and crasher back")
        assert not [p for p in web if pid_alive(p)]  # the old copies were found and stopped
        assert len(instances_of(corral, "web")) == 2  # the scale to 4 was not saved: the old state holds


def test_kill_on_a_full_disk_stops_everything_and_the_daemon(corral: Corral, workdir: Path) -> None:
    """Issue 8, finding 6: after the first "database or disk is full", `corral kill` failed.  Now it
    ends every app and the daemon, with exit status 0, while the store still cannot write."""
    flag = workdir / "crash-now"
    with small_disk(corral, "16m"):
        home = Path(corral.home)
        corral.run("start", "--name", "crasher", *QUIET, "--", PYTHON, "-c", CRASH_ON_FLAG, str(flag))
        corral.run("start", "--name", "web", "-i", "2", *QUIET, "--", "sleep", "600")
        wait_until(lambda: len(instances_of(corral, "web")) == 2, what="two web instances")
        web = [r["pid"] for r in corral.ls() if r["name"] == "web" and r["pid"]]
        daemon = corral.daemon_pid()
        assert daemon and len(web) == 2
        fill(home / "filler")
        flag.touch()  # a crash whose record the full disk refuses
        wait_until(lambda: store_status(corral)["ok"] is False, what="the store to say it cannot save")
        killed = corral.run("kill", check=False, timeout=60)
        assert killed.returncode == 0 and "Traceback" not in killed.stderr, killed.stderr
        wait_until(lambda: not pid_alive(daemon), what="the daemon to exit")
        assert corral.app_processes() == [] and not [p for p in web if pid_alive(p)]
