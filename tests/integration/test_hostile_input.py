"""Issue 8's findings 3, 4 and 10 against a real daemon: what a raw-socket client, a damaged store
or dump, a wedged daemon and a clumsy command line do now: one line, never a traceback, a hang or
a daemon death."""

from __future__ import annotations

import json
import os
import pwd
import resource
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PYTHON, ROOT, Corral, wait_until

IGNORES_TERM = [PYTHON, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"]


def raw(corral: Corral, payload: bytes, timeout: float = 20) -> list[dict[str, Any]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.connect(str(Path(corral.home) / "corral.sock"))
    try:
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
    except (BrokenPipeError, ConnectionResetError):
        pass
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    sock.close()
    return [json.loads(line) for line in data.splitlines()]


def spec(**changes: Any) -> dict[str, Any]:
    return {"name": "evil", "cwd": "/tmp", "cmd": ["sleep", "600"], **changes}


HOSTILE = [
    ({"instances": 1e308}, "instances: 1e+308 is not a number of instances"),
    ({"instances": 100000000}, "instances: 100000000 is not a number of instances"),
    ({"instances": "abc"}, 'instances: "abc" is not a number of instances'),
    ({"stop_signal": "KILL"}, 'stop_signal: "KILL" is not a signal name'),
    ({"kill_timeout": 1e300}, "kill_timeout: 1e+300 is out of range"),
    ({"out_file": "/tmp"}, 'out_file: "/tmp" cannot be a log file'),
    ({"out_file": "/tmp/a\u0000b"}, "out_file: \"/tmp/a\\u0000b\" contains a NUL character"),
    ({"cwd": "relative"}, 'cwd: "relative" is not an absolute path'),
    ({"env": {"A": 1}}, 'env: (a table of 1) ["A"] is not a string the OS can pass'),
    ({"ready": {"kind": "http"}}, 'ready: {"kind": "http"} has no interval'),
    ({"cmd": "sleep 600"}, 'cmd: "sleep 600" is not a list'),
    ({"listen": ["unix:/" + "x" * 200]}, "is a unix socket path longer than 107 bytes"),
]


def test_hostile_specs_are_refused_and_never_stored(corral: Corral) -> None:
    corral.run("start", "--name", "good", "--", "sleep", "600")
    daemon = corral.daemon_pid()
    for changes, message in HOSTILE:
        (answer,) = raw(corral, json.dumps({"id": 1, "op": "start", "args": {"apps": [spec(**changes)]}}).encode() + b"\n")
        assert answer["error"]["code"] == "user_error", changes
        assert answer["error"]["message"].startswith('apps[0] "evil": ') and message in answer["error"]["message"]
    (answer,) = raw(corral, b'{"id": 2, "op": "scale", "args": {"target": "good", "count": "100000000"}}\n')
    assert answer["error"]["message"] == "scale: good would have 100000000 instances (at most 1024)"
    assert [r["name"] for r in corral.ls()] == ["good"]
    assert corral.daemon_pid() == daemon
    os.kill(daemon, signal.SIGKILL)  # the next daemon finds nothing hostile in the store either
    corral.expect_daemon_restart()
    wait_until(lambda: not corral.daemon_pid(), what="the daemon to die")
    corral.run("ping")
    corral.wait_status("good", "online")
    assert "Traceback" not in Path(corral.home, "daemon.log").read_text()


def test_deeply_nested_messages_all_get_a_reply(corral: Corral) -> None:
    corral.run("ping")
    for depth in (33, 100, 1000, 100_000):
        payload = b"".join(b'{"id": %d, "op": "ls", "args": %s%s}\n' % (i, b"[" * depth, b"]" * depth)
                           for i in range(5))
        replies = raw(corral, payload)
        assert [r["error"]["message"] for r in replies] == ["nested too deeply (at most 32 levels)"] * 5, depth


def _kill_daemon_and_edit_store(corral: Corral, edit: str, *params: Any) -> None:
    daemon = corral.daemon_pid()
    assert daemon
    os.kill(daemon, signal.SIGKILL)
    corral.expect_daemon_restart()
    wait_until(lambda: not corral.daemon_pid(), what="the daemon to die")
    db = sqlite3.connect(str(Path(corral.home, "state.db")))
    db.execute(edit, params)
    db.commit()
    db.close()


def test_recovery_skips_and_reports_a_spec_that_no_longer_loads(corral: Corral) -> None:
    corral.run("start", "--name", "good", "--", "sleep", "600")
    corral.run("start", "--name", "bad", "--", "sleep", "601")
    _kill_daemon_and_edit_store(corral, "UPDATE apps SET spec = json_set(spec, '$.instances', 1e308) WHERE name = 'bad'")
    corral.run("ping")
    corral.wait_status("good", "online")
    reason = ("stored spec does not load, app left out: instances: 1e+308 is not a number of instances "
              "(at most 1024; CORRAL_MAX_INSTANCES raises the ceiling)")
    assert [(r["name"], r["status"], r.get("reason")) for r in corral.ls()] == [
        ("good", "online", None), ("bad", "skipped", reason)]
    skipped = [e for e in corral.events() if e["kind"] == "skipped"]
    assert [(e["app"], e["message"]) for e in skipped] == [("bad", reason)]
    log = Path(corral.home, "daemon.log").read_text()
    assert len([line for line in log.splitlines() if "app bad:" in line]) == 1 and "Traceback" not in log
    assert not [p for p in corral.app_processes() if "601" in Path(f"/proc/{p}/cmdline").read_bytes().decode()]


def test_recovery_skips_an_app_whose_log_file_became_a_directory(corral: Corral, workdir: Path) -> None:
    out = workdir / "out.log"
    corral.run("start", "--name", "logged", "-o", str(out), "--", "sleep", "600")
    corral.run("start", "--name", "good", "--", "sleep", "601")
    _kill_daemon_and_edit_store(corral, "SELECT 1")
    out.unlink()
    out.mkdir()
    corral.run("ping")
    corral.wait_status("good", "online")
    assert [(r["name"], r["status"]) for r in corral.ls()] == [("good", "online"), ("logged", "skipped")]
    assert [e["message"] for e in corral.events() if e["kind"] == "skipped"] == [
        f'stored spec does not load, app left out: out_file: "{out}" cannot be a log file (it is a directory, '
        "or under a file)"]


def test_resurrect_skips_a_bad_dump_entry(corral: Corral) -> None:
    corral.run("start", "--name", "good", "--", "sleep", "600")
    corral.run("save")
    dump_path = Path(corral.home, "dump.json")
    dump = json.loads(dump_path.read_text())
    bad = json.loads(json.dumps(dump["apps"][0]))
    bad["spec"].update(name="bad", stop_signal="KILL")
    dump["apps"] += [bad, {"spec": "nonsense"}, 42]
    dump_path.write_text(json.dumps(dump))
    corral.run("delete", "good")
    result = corral.run("resurrect", check=False)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"corral: {dump_path}: apps[1] 'bad': skipped: stop_signal: \"KILL\" is not a signal name (like \"SIGTERM\")",
        f"corral: {dump_path}: apps[2]: skipped: dictionary update sequence element #0 has length 1; 2 is required",
        f"corral: {dump_path}: apps[3]: skipped: 'int' object is not subscriptable",
    ]
    corral.wait_status("good", "online")
    dump_path.write_text("[" * 100_000)
    result = corral.run("resurrect", check=False)
    assert (result.returncode, result.stderr) == (2, f"corral: {dump_path}: not a valid dump (maximum recursion "
                                                     "depth exceeded while decoding a JSON array from a unicode string)\n")


def test_the_cli_says_which_operation_timed_out(corral: Corral) -> None:
    corral.run("start", "--name", "s", "--", "sleep", "600")
    daemon = corral.daemon_pid()
    assert daemon
    os.kill(daemon, signal.SIGSTOP)
    try:
        for args, op in ((["ls"], "ls"), (["describe", "s"], "describe"), (["stop", "s"], "stop")):
            started = time.monotonic()
            result = corral.run(*args, check=False, env={"CORRAL_TIMEOUT": "2"})
            assert (result.returncode, result.stderr) == (1, f'corral: the daemon did not answer "{op}" within 2s\n')
            assert time.monotonic() - started < 10
    finally:
        os.kill(daemon, signal.SIGCONT)
    assert corral.daemon_pid() == daemon


def test_long_operations_outlast_the_timeout_with_keepalives(corral: Corral) -> None:
    corral.run("start", "--name", "stubborn", "--kill-timeout", "3s", "--", *IGNORES_TERM)
    started = time.monotonic()
    corral.run("stop", "stubborn", env={"CORRAL_TIMEOUT": "2"})
    assert time.monotonic() - started >= 2.9  # SIGKILL after kill_timeout, the CLI waited for it
    assert corral.row("stubborn")["status"] == "stopped"


@pytest.mark.parametrize("args, message", [
    (["logs", "--since", "1" * 30], None),
    (["logs", "--since", "1" * 400 + "d"], f'corral: --since: "{"1" * 37}..." is too long a duration (like 10m, 2h, 1d)\n'),
    (["logs", "--grep", "\udcff"], None),
    (["logs", "--grep", "("], "corral: --grep: not a regular expression (missing ), unterminated subpattern at "
                              "position 0)\n"),
    (["events", "--lines", "-1"], "corral: events: limit: -1 is not a whole number from 0 to 1000000 "
                                  "(how many events (--lines))\n"),
    (["events", "--lines", "9" * 30], f"corral: events: limit: {'9' * 30} is not a whole number from 0 to 1000000 "
                                      "(how many events (--lines))\n"),
    (["scale", "s", "\u00b2"], 'corral: scale: "\u00b2" is not a number of instances (use 4, +2 or -1)\n'),
    (["scale", "s", "9" * 20], f'corral: scale: "{"9" * 20}" is not a number of instances (use 4, +2 or -1)\n'),
    (["scale", "s", "100000000"], "corral: scale: s would have 100000000 instances (at most 1024)\n"),
    (["reload", "s", "--parallel", "0"], "corral: reload: parallel: 0 is not a whole number from 1 to 1024 "
                                         "(instances replaced at a time)\n"),
    (["start", "-i", "1e308", "--", "sleep", "1"], "corral: command line: instances: \"1e308\" is not an instance "
     'count (use a number >= 1, "max" or 0 for one per CPU, -1 for one less)\n'),
    (["start", "-i", "100000000", "--", "sleep", "1"], "corral: command line: instances: 100000000 is too many "
     "instances (at most 1024; CORRAL_MAX_INSTANCES raises the ceiling)\n"),
    (["start", "-o", "/tmp", "--", "sleep", "1"], 'corral: command line: out_file: "/tmp" is a directory (give a '
     "file; corral creates it)\n"),
    (["start", "-k", "1e400", "--", "sleep", "1"], 'corral: command line: kill_timeout: "1e400" is not a duration '
     '(try "5s" or "500ms")\n'),
])
def test_one_line_instead_of_a_traceback(corral: Corral, args: list[str], message: str | None) -> None:
    corral.run("start", "--name", "s", "--", "sleep", "600")
    result = corral.run(*args, check=False)
    assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) <= 1
    if message is not None:
        assert (result.returncode, result.stderr) == (2, message)
    assert [r["name"] for r in corral.ls()] == ["s"]


def test_files_that_would_hang_validate(corral: Corral, workdir: Path) -> None:
    os.mkfifo(workdir / "fifo.toml")
    (workdir / "huge.toml").write_text('[[apps]]\nname = "w"\ncmd = ["x"]\nlog_max_size = ' + "1" * 400 + "\n")
    (workdir / "nested.json").write_text('{"apps": ' + "[" * 50_000 + "]" * 50_000 + "}")
    for name, message in (
        ("fifo.toml", "is a FIFO, not a regular file"),
        ("huge.toml", 'apps[0] "w": log_max_size: ' + "1" * 197 + '... is not a size (try "10MB", "512K" or 0 '
                      "for no size limit)"),
        ("nested.json", "nested more than 32 levels deep (an ecosystem file needs a few)"),
    ):
        result = corral.run("validate", str(workdir / name), check=False, timeout=30)
        assert (result.returncode, result.stderr) == (2, f"corral: {workdir / name}: {message}\n")


def _python_for_nobody() -> tuple[str, dict[str, str]]:
    """A Python the user nobody can run with corral importable: the tests' own, or else (a venv
    whose interpreter lives under root's 0700 home) the system's with this tree on PYTHONPATH."""
    for python, extra in ((PYTHON, {}), ("/usr/bin/python3", {"PYTHONPATH": str(ROOT)})):
        try:
            subprocess.run([python, "-c", "import corral.cli.main"], user="nobody", cwd="/tmp", check=True,
                           timeout=30, capture_output=True, env={**os.environ, **extra})
        except (OSError, subprocess.CalledProcessError):
            continue
        return python, extra
    pytest.skip(f"user nobody can run neither {PYTHON} nor /usr/bin/python3 with corral on its path")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run the CLI as another user")
def test_another_users_home_is_one_line(corral: Corral) -> None:
    corral.run("ping")
    python, extra = _python_for_nobody()
    nobody = pwd.getpwnam("nobody").pw_uid
    expected = (f"corral: CORRAL_HOME {corral.home} belongs to user root (uid 0), not to user nobody (uid {nobody}): "
                "refusing to use it (each user needs a CORRAL_HOME of their own)\n")
    for args in (["ls"], ["ping"], ["describe", "x"], ["start", "--", "sleep", "1"]):
        result = subprocess.run([python, "-m", "corral", *args], capture_output=True, text=True, timeout=60,
                                env={**corral.env, **extra, "HOME": "/tmp"}, user="nobody", cwd="/tmp")
        assert (result.returncode, result.stderr) == (2, expected), args
    assert corral.ls() == []  # the owner's daemon goes on, untouched


def test_huge_unterminated_lines_do_not_bloat_the_daemon(corral: Corral) -> None:
    corral.run("ping")
    daemon = corral.daemon_pid()

    def rss() -> int:
        status = Path(f"/proc/{daemon}/status").read_text()
        return int(next(line for line in status.splitlines() if line.startswith("VmRSS")).split()[1]) // 1024

    before = rss()
    socks = [socket.socket(socket.AF_UNIX) for _ in range(20)]
    for sock in socks:
        sock.connect(str(Path(corral.home) / "corral.sock"))
        sock.setblocking(False)
    payload = b"{" + b" " * (15 * 1024 * 1024)
    sent, peak, deadline = [0] * 20, 0, time.monotonic() + 60
    while time.monotonic() < deadline and min(sent) < len(payload):
        for i, sock in enumerate(socks):
            try:
                sent[i] += sock.send(payload[sent[i]:sent[i] + (1 << 20)]) if sent[i] < len(payload) else 0
            except BlockingIOError:
                pass
            except (BrokenPipeError, ConnectionResetError):
                sent[i] = len(payload)
        peak = max(peak, rss())
    assert corral.run("ls", "--json").returncode == 0
    for sock in socks:
        sock.close()
    assert peak - before < 48, (before, peak)  # 16 MiB in total, with the allocator's slack
    assert corral.daemon_pid() == daemon


def test_a_thousand_idle_clients_do_not_block_commands(corral: Corral) -> None:
    """Finding 7: 1,024 idle clients blocked every command and turned a crash-looping app errored
    for good (its restarts found no file descriptor left)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1100:
        pytest.skip(f"needs 1100 file descriptors (hard limit {hard})")
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))  # the daemon inherits the usual soft limit
    try:
        corral.run("start", "--name", "looper", "--", PYTHON, str(ROOT / "tests" / "apps" / "crash.py"), "1", "1100")
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1100), hard))
    idle = []
    try:
        for _ in range(1024):
            sock = socket.socket(socket.AF_UNIX)
            sock.connect(str(Path(corral.home) / "corral.sock"))
            idle.append(sock)
        started = time.monotonic()
        assert corral.run("ping", timeout=30).returncode == 0
        assert [r["name"] for r in json.loads(corral.run("ls", "--json").stdout)] == ["looper"]
        assert time.monotonic() - started < 10
        restarts = corral.row("looper")["restarts"]
        wait_until(lambda: corral.row("looper")["restarts"] >= restarts + 2, 30, "the crash loop to go on")
        assert corral.row("looper")["status"] != "errored"
        assert not [e for e in corral.events("looper") if e["kind"] in ("spawn_failed", "errored")]
    finally:
        for sock in idle:
            sock.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert "Traceback" not in Path(corral.home, "daemon.log").read_text()


def test_sys_executable_is_the_venvs() -> None:
    assert sys.executable == PYTHON


def test_an_invalid_instance_ceiling_keeps_the_daemon_from_starting(corral: Corral) -> None:
    result = corral.run("ping", check=False, env={"CORRAL_MAX_INSTANCES": "lots"})
    assert result.returncode == 1
    assert result.stderr == (f"corral: the daemon did not start (see {corral.home}/daemon.log): corral: "
                             "CORRAL_MAX_INSTANCES='lots' is not an instance ceiling (use a whole number from 1 to "
                             "100000; default 1024)\n")


def test_the_ceiling_is_the_daemons(corral: Corral) -> None:
    corral.env["CORRAL_MAX_INSTANCES"] = "2"
    corral.run("start", "--name", "s", "--", "sleep", "600")
    result = corral.run("scale", "s", "3", check=False)
    assert (result.returncode, result.stderr) == (2, "corral: scale: s would have 3 instances (at most 2)\n")
    result = corral.run("start", "-i", "3", "--name", "t", "--", "sleep", "600", check=False)
    assert (result.returncode, result.stderr) == (
        2, 'corral: command line "t": instances: 3 is too many instances (at most 2 (CORRAL_MAX_INSTANCES))\n')
