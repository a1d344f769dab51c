"""Liveness probes and the health sweep against a real daemon: a real server that hangs in a
known function is replaced after ``failures`` probes (never during its start period); tcp and
cmd probes; an errored app revived by the sweep, and the sweep report."""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path

from tests.conftest import APPS, Corral, wait_until


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write(workdir: Path, body: str) -> str:
    path = workdir / "corral.toml"
    path.write_text(body)
    return str(path)


def kinds(corral: Corral, name: str, kind: str) -> list[dict]:
    return [e for e in corral.events(name) if e["kind"] == kind]


def stuck_app(workdir: Path, port: int, mode: str, health: str, name: str = "stuck") -> str:
    return write(workdir, f"""
[[apps]]
name = "{name}"
cmd = ["{sys.executable}", "{APPS / 'stuck.py'}", "{port}", "{workdir / 'flag'}", "{mode}"]
health = {health}
""")


def test_a_server_stuck_in_a_function_is_replaced_after_three_failed_probes(corral: Corral, workdir: Path) -> None:
    port = free_port()
    corral.run("start", stuck_app(workdir, port, "hang", f'{{ http = "/healthz", port = {port}, interval = "0.2s", '
                                                         f'timeout = "0.5s", failures = 3, start_period = "0s" }}'))
    first = corral.wait_status("stuck", "online")["pid"]
    wait_until(lambda: "serving" in corral.log("stuck"), 10, "the server up")
    # start_period 0: a probe that came before the server listened may have failed (on a loaded
    # machine); the one after it passed and reset the count. Only what follows the flag matters.
    wait_until(lambda: "answered" in corral.log("stuck"), 10, "a probe answered")
    flagged = time.time()
    (workdir / "flag").touch()
    done = wait_until(lambda: kinds(corral, "stuck", "liveness_restarted"), 20, "the replacement")[0]
    failed = [e for e in kinds(corral, "stuck", "liveness_failed") if e["ts"] >= flagged]
    assert [e["data"]["failures"] for e in failed[:3]] == [1, 2, 3]
    assert [e["data"]["replacing"] for e in failed[:3]] == [False, False, True]
    assert failed[0]["data"]["detail"] == "timed out after 0.5s" and failed[0]["data"]["pid"] == first
    assert "stop_signal, then restarted" in done["message"] and f"pid {first} ->" in done["message"]
    row = corral.row("stuck")
    assert row["pid"] != first and row["restarts"] >= 1


def test_no_restart_during_the_start_period(corral: Corral, workdir: Path) -> None:
    port = free_port()
    (workdir / "flag").touch()  # stuck from its first request
    corral.run("start", stuck_app(workdir, port, "hang", f'{{ http = "/healthz", port = {port}, interval = "0.2s", '
                                                         f'timeout = "0.3s", failures = 2, start_period = "3s" }}'))
    spawned = wait_until(lambda: kinds(corral, "stuck", "spawn"), 10, "the spawn")[0]
    failed = wait_until(lambda: kinds(corral, "stuck", "liveness_failed"), 20, "a counted failure")[0]
    assert failed["ts"] - spawned["ts"] >= 3.0, (failed, spawned)  # failures in the start period do not count
    done = wait_until(lambda: kinds(corral, "stuck", "liveness_restarted"), 20, "the replacement")[0]
    assert done["ts"] - spawned["ts"] >= 3.0


def test_tcp_and_cmd_probes(corral: Corral, workdir: Path) -> None:
    port = free_port()
    corral.run("start", stuck_app(workdir, port, "close", f'{{ tcp = "127.0.0.1:{port}", interval = "0.2s", '
                                                          f'failures = 2, start_period = "0s" }}', name="tcpapp"))
    wait_until(lambda: "serving" in corral.log("tcpapp"), 10, "the server up")
    (workdir / "flag").touch()
    wait_until(lambda: kinds(corral, "tcpapp", "liveness_restarted"), 20, "the tcp replacement")
    assert kinds(corral, "tcpapp", "liveness_failed")[0]["data"]["probe"] == "tcp"
    corral.run("delete", "tcpapp")
    flag = workdir / "cmdflag"
    corral.run("start", write(workdir, f"""
[[apps]]
name = "cmdapp"
cmd = ["sleep", "600"]
health = {{ cmd = ["test", "!", "-e", "{flag}"], interval = "0.2s", failures = 2, start_period = "0s" }}
"""))
    first = corral.wait_status("cmdapp", "online")["pid"]
    flag.touch()
    wait_until(lambda: kinds(corral, "cmdapp", "liveness_restarted"), 20, "the cmd replacement")
    failed = kinds(corral, "cmdapp", "liveness_failed")
    assert failed[0]["data"]["detail"] == "command failed" and failed[0]["data"]["pid"] == first


def test_a_bad_health_setting_is_one_line(corral: Corral, workdir: Path) -> None:
    bad = write(workdir, '[[apps]]\nname = "a"\ncmd = ["sleep", "60"]\nhealth = { http = "/h", failures = 0 }\n')
    result = corral.run("validate", bad, check=False)
    assert result.returncode != 0
    out = result.stdout + result.stderr
    assert "health" in out and "failures takes a count from 1 to 100" in out and "Traceback" not in out


def test_the_sweep_revives_an_errored_app_and_reports(corral: Corral, workdir: Path) -> None:
    corral.run("start", write(workdir, f"""
sweep_interval = "2s"
[[apps]]
name = "broken"
cmd = ["{sys.executable}", "-c", "import sys; sys.exit(3)"]
max_restarts = 2
min_uptime = "5s"
restart_delay = "0ms"
"""))
    corral.wait_status("broken", "errored", timeout=20)
    revived = wait_until(lambda: kinds(corral, "broken", "revived"), 20, "the sweep's revival")[0]
    sweeps = wait_until(lambda: [e for e in corral.events("all") if e["kind"] == "sweep"
                                 and any(p["app"] == "broken" for p in e["data"]["problems"])], 10, "a sweep report")
    assert "broken not online" in sweeps[0]["message"]
    assert revived["data"] == {"by": "sweep"}
