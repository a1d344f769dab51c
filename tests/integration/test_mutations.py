"""One mutation per app at a time, and reloads that never drop the last good instance."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
from pathlib import Path

from tests.conftest import PYTHON, Corral, app, pid_alive, wait_until

WEBAPP = app("webapp.py")
WORKER = app("worker.py")
BUSY = re.compile(r"^corral: web: a reload is in progress \(started \d+(\.\d)? s ago\); try again when it ends$")


def web_toml(version: str) -> str:
    return f"""
[[apps]]
name = "web"
script = "{WEBAPP}"
instances = 2
listen = "tcp://127.0.0.1:0"
ready = "notify"
env = {{ NOTIFY = "1", BOOT_DELAY = "2", VERSION = "{version}" }}
kill_timeout = "3s"
"""


def worker_toml(env: str = "", extra: str = "", listen_timeout: str = "1s") -> str:
    return f"""
[[apps]]
name = "web"
script = "{WORKER}"
listen_timeout = "{listen_timeout}"
kill_timeout = "3s"
env = {{ {env} }}
{extra}
"""


def web_rows(corral: Corral) -> list[dict[str, object]]:
    return [r for r in corral.ls() if r["name"] == "web"]


def background(corral: Corral, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([PYTHON, "-m", "corral", *args], env=corral.env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)


def spawns(corral: Corral) -> int:
    return sum(1 for e in corral.events("web") if e["kind"] == "spawn")


def reload_in_progress(corral: Corral, workdir: Path) -> tuple[Path, subprocess.Popen[str]]:
    """Two web instances online (2 s boots), then `corral reload web` running in the background,
    seen to have started its first new instance."""
    toml = workdir / "corral.toml"
    toml.write_text(web_toml("1"))
    corral.run("start", str(toml))
    wait_until(lambda: [r["status"] for r in web_rows(corral)] == ["online"] * 2, 20, "two instances online")
    before = spawns(corral)
    reload = background(corral, "reload", "web")
    wait_until(lambda: spawns(corral) > before, 10, "the reload to start a new instance")
    return toml, reload


def test_a_changed_start_during_a_reload_is_refused_and_one_instance_per_index_remains(
        corral: Corral, workdir: Path) -> None:
    toml, reload = reload_in_progress(corral, workdir)
    toml.write_text(web_toml("2"))
    refused = corral.run("start", str(toml), check=False)
    assert refused.returncode == 1
    assert BUSY.match(refused.stderr.strip()), refused.stderr
    for other in (("reload", "web"), ("scale", "web", "3"), ("restart", "web")):
        result = corral.run(*other, check=False)
        assert result.returncode == 1 and BUSY.match(result.stderr.strip()), (other, result.stderr)
    out, err = reload.communicate(timeout=60)
    assert reload.returncode == 0, err
    rows = web_rows(corral)
    assert sorted(r["instance"] for r in rows) == [0, 1]
    assert all(r["status"] == "online" for r in rows)
    # the refused start changed nothing; run again now that the app is free, it applies VERSION=2
    applied = corral.run("start", str(toml))
    assert "web: configuration changed, reloaded" in applied.stderr
    rows = web_rows(corral)
    assert sorted(r["instance"] for r in rows) == [0, 1] and all(r["status"] == "online" for r in rows)


def test_a_stop_during_a_reload_wins_and_the_reload_says_so(corral: Corral, workdir: Path) -> None:
    _, reload = reload_in_progress(corral, workdir)
    corral.run("stop", "web")
    _, err = reload.communicate(timeout=60)
    assert reload.returncode == 1
    assert err.strip() == 'corral: reload of "web" stopped: the app was stopped meanwhile'
    rows = web_rows(corral)
    assert [r["status"] for r in rows] == ["stopped"] * 2 and sorted(r["instance"] for r in rows) == [0, 1]
    assert corral.app_processes() == []


def test_a_broken_build_reloaded_without_readiness_config_leaves_the_old_instance_serving(
        corral: Corral, workdir: Path) -> None:
    toml = workdir / "corral.toml"
    toml.write_text(worker_toml())
    corral.run("start", str(toml))
    old = corral.wait_status("web", "online")["pid"]
    toml.write_text(worker_toml('BROKEN = "0.3"'))
    result = corral.run("reload", "web", "--update-env", check=False)
    assert result.returncode == 1
    assert re.fullmatch(r'corral: reload of "web" stopped: new instance 0 \(pid \d+\) exited with code 1 '
                        r"before it was ready; the old instances keep serving\n", result.stderr), result.stderr
    rows = web_rows(corral)
    assert [(r["pid"], r["status"]) for r in rows] == [(old, "online")]
    assert pid_alive(old)


def test_a_good_build_without_readiness_config_replaces_the_old_after_listen_timeout(
        corral: Corral, workdir: Path) -> None:
    toml = workdir / "corral.toml"
    toml.write_text(worker_toml())
    corral.run("start", str(toml))
    before = corral.wait_status("web", "online")
    started = time.monotonic()
    corral.run("reload", "web")
    took = time.monotonic() - started
    after = corral.row("web")
    assert took >= 1.0  # listen_timeout: the new instance proved itself by staying up
    assert after["pid"] != before["pid"] and not pid_alive(before["pid"])
    assert after["restarts"] == before["restarts"] + 1  # a reload counts as a restart, as in PM2


def test_an_app_that_listens_is_ready_the_moment_it_listens(corral: Corral, workdir: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    toml = workdir / "corral.toml"
    toml.write_text(worker_toml(f'LISTEN_PORT = "{port}", LISTEN_DELAY = "0.3"', listen_timeout="20s"))
    corral.run("start", str(toml))
    corral.wait_status("web", "online")
    started = time.monotonic()
    corral.run("reload", "web")
    assert time.monotonic() - started < 10  # far less than listen_timeout
    ready = [e["message"] for e in corral.events("web") if e["kind"] == "ready"]
    assert ready and all(m.startswith("listening after 0.") for m in ready), ready
    assert float(ready[-1].split()[2].rstrip("s")) >= 0.3


def test_start_restart_and_reload_return_settled_rows_never_stopping(corral: Corral, workdir: Path) -> None:
    toml = workdir / "corral.toml"
    toml.write_text(worker_toml(extra="instances = 2"))
    corral.run("start", str(toml))
    toml.write_text(worker_toml('VERSION = "2"', "instances = 2"))
    rows = json.loads(corral.run("start", str(toml), "--json").stdout)
    # (not memory_bytes > 0: the kernel's RSS of a process exec'd a moment ago may still read 0)
    assert [r["status"] for r in rows] == ["online", "online"] and all(r["pid"] for r in rows)
    rows = json.loads(corral.run("restart", "web", "--json").stdout)
    assert [r["status"] for r in rows] == ["online", "online"]
    before = {r["pid"] for r in rows}
    rows = json.loads(corral.run("reload", "web", "--json").stdout)  # the rows of the new instances
    assert [(r["instance"], r["status"]) for r in rows] == [(0, "online"), (1, "online")]
    assert all(r["pid"] and pid_alive(r["pid"]) for r in rows) and not before & {r["pid"] for r in rows}
    table = corral.run("reload", "web").stdout
    assert "stopping" not in table and table.count(" online ") == 2, table


def test_a_changed_instance_count_alone_scales_without_restarting(corral: Corral, workdir: Path) -> None:
    toml = workdir / "corral.toml"
    toml.write_text(worker_toml(extra="instances = 1"))
    corral.run("start", str(toml))
    first = corral.wait_status("web", "online")["pid"]
    toml.write_text(worker_toml(extra="instances = 3"))
    result = corral.run("start", str(toml))
    assert "web: configuration changed, applied without a restart" in result.stderr
    rows = web_rows(corral)
    assert sorted(r["instance"] for r in rows) == [0, 1, 2] and rows[0]["pid"] == first


def test_after_scale_up_logs_still_show_the_first_instance(corral: Corral, workdir: Path) -> None:
    corral.run("start", app("ticker.py"), "--name", "tick", "--", "50")
    corral.wait_status("tick", "online")
    corral.run("scale", "tick", "3")
    wait_until(lambda: len([r for r in corral.ls() if r["status"] == "online"]) == 3, what="three online")
    first_file = str(Path(corral.home) / "logs" / "tick-out.log")
    info = json.loads(corral.run("describe", "tick", "--json").stdout)
    assert info["instances"][0]["out_log"] == first_file  # the file instance 0 really writes
    size = Path(first_file).stat().st_size
    wait_until(lambda: Path(first_file).stat().st_size > size, what="instance 0 to keep writing its file")
    lines = [json.loads(line) for line in
             corral.run("logs", "tick", "--out", "--lines", "2", "--json").stdout.splitlines()]
    assert {line["instance"] for line in lines} == {0, 1, 2}
