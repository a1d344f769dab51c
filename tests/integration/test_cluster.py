"""Cluster mode: shared sockets, readiness, zero-downtime rolling reload, scale, watchdog, depends_on."""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from pathlib import Path


from tests.conftest import Corral, app, pid_alive, wait_until
from tests.loadgen import Load

WEBAPP = app("webapp.py")


def write(workdir: Path, body: str) -> str:
    path = workdir / "corral.toml"
    path.write_text(body)
    return str(path)


def web_toml(env: str = "", extra: str = "", instances: int = 2) -> str:
    return f"""
[[apps]]
name = "web"
script = "{WEBAPP}"
instances = {instances}
listen = "tcp://127.0.0.1:0"
env = {{ {env} }}
kill_timeout = "3s"
{extra}
"""


def port_of(corral: Corral, name: str = "web") -> int:
    info = json.loads(corral.run("describe", name, "--json").stdout)
    return int(info["listen"][0].rsplit(":", 1)[1])


def get(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
        return response.read().decode()


def online_pids(corral: Corral, name: str = "web") -> set[int]:
    return {r["pid"] for r in corral.ls() if r["name"] == name and r["status"] == "online"}


def test_instances_share_one_address_and_both_serve(corral: Corral, workdir: Path) -> None:
    corral.run("start", write(workdir, web_toml('NOTIFY = "1"', 'ready = "notify"')))
    wait_until(lambda: len(online_pids(corral)) == 2, what="two instances online")
    port = port_of(corral)
    assert port != 0
    seen = {get(port).split()[0] for _ in range(200)}
    assert seen == {f"pid={p}" for p in online_pids(corral)}


def test_rolling_reload_under_load_has_zero_failed_requests(corral: Corral, workdir: Path) -> None:
    corral.run("start", write(workdir, web_toml('NOTIFY = "1", BOOT_DELAY = "1"', 'ready = "notify"')))
    wait_until(lambda: len(online_pids(corral)) == 2, timeout=20, what="two instances online")
    old = online_pids(corral)
    with Load(port_of(corral), threads=4) as load:
        load.wait_requests(200)
        started = time.monotonic()
        result = corral.run("reload", "web")
        took = time.monotonic() - started
        served_before = load.result.ok
        load.wait_requests(served_before + 200)
    stats = load.result
    assert stats.failed == 0, stats.failures
    new = online_pids(corral)
    assert len(new) == 2 and not new & old
    assert not [p for p in old if pid_alive(p)]
    assert {f"pid={p}" for p in new} <= set(stats.bodies)  # the new instances served
    assert took >= 2.0  # each new instance took its 1 s to boot before the old one was stopped
    assert result.stdout.count("reloaded web[") == 2


def test_reload_with_a_new_version_that_crashes_on_boot_keeps_the_old_serving(corral: Corral, workdir: Path) -> None:
    toml = write(workdir, web_toml('NOTIFY = "1"', 'ready = "notify"'))
    corral.run("start", toml)
    wait_until(lambda: len(online_pids(corral)) == 2, what="two instances online")
    old = online_pids(corral)
    Path(toml).write_text(web_toml('NOTIFY = "1", CRASH_ON_BOOT = "1"', 'ready = "notify"'))
    with Load(port_of(corral), threads=4) as load:
        load.wait_requests(100)
        result = corral.run("reload", "web", "--update-env", check=False)
        load.wait_requests(load.result.ok + 100)
    assert result.returncode == 1
    message = result.stderr.strip()
    assert message.startswith('corral: reload of "web" stopped: new instance 0 (pid ')
    assert message.endswith("exited with code 1 before it was ready; the old instances keep serving")
    assert len(result.stderr.splitlines()) == 1
    assert load.result.failed == 0, load.result.failures
    assert online_pids(corral) == old
    assert len([r for r in corral.ls() if r["name"] == "web"]) == 2


def test_readiness_by_notify_keeps_launching_until_ready(corral: Corral, workdir: Path) -> None:
    corral.run("start", write(workdir, web_toml('NOTIFY = "1", BOOT_DELAY = "1"', 'ready = "notify"', 1)))
    assert corral.row("web")["status"] == "launching"
    corral.wait_status("web", "online", timeout=10)
    ready = [e for e in corral.events("web") if e["kind"] == "ready"]
    assert ready and float(ready[0]["message"].split()[2].rstrip("s")) >= 1.0


def test_readiness_by_http_probe(corral: Corral, workdir: Path) -> None:
    corral.run("start", write(workdir, web_toml('BOOT_DELAY = "1"', 'ready = { http = "/healthz", interval = "50ms" }', 1)))
    assert corral.row("web")["status"] == "launching"
    corral.wait_status("web", "online", timeout=10)
    assert get(port_of(corral)).startswith("pid=")


def test_readiness_by_listen_timeout(corral: Corral, workdir: Path) -> None:
    corral.run("start", write(workdir, web_toml("", 'listen_timeout = "700ms"', 1)))
    started = time.monotonic()
    assert corral.row("web")["status"] == "launching"
    corral.wait_status("web", "online", timeout=10)
    assert time.monotonic() - started >= 0.5


def test_not_ready_in_time_is_a_failed_start(corral: Corral, workdir: Path) -> None:
    corral.run("start", write(workdir, web_toml("", 'ready = "notify"\nready_timeout = "500ms"\nmax_restarts = 1', 1)))
    corral.wait_status("web", "errored", timeout=20)
    kinds = [e["kind"] for e in corral.events("web")]
    assert kinds.count("not_ready") == 2


def test_scale_up_and_down_under_load(corral: Corral, workdir: Path) -> None:
    corral.run("start", write(workdir, web_toml('NOTIFY = "1"', 'ready = "notify"')))
    wait_until(lambda: len(online_pids(corral)) == 2, what="two instances online")
    with Load(port_of(corral), threads=4) as load:
        load.wait_requests(100)
        rows = json.loads(corral.run("scale", "web", "+2", "--json").stdout)
        assert [r["status"] for r in rows] == ["online"] * 4
        load.wait_requests(load.result.ok + 200)
        rows = json.loads(corral.run("scale", "web", "1", "--json").stdout)
        assert [(r["instance"], r["status"]) for r in rows] == [(0, "online")]
        load.wait_requests(load.result.ok + 200)
    assert load.result.failed == 0, load.result.failures
    assert len(load.result.bodies) >= 3  # the added instances served too


def test_increment_var_gives_each_instance_its_port(corral: Corral, workdir: Path) -> None:
    out = workdir / "rec.jsonl"
    corral.run("start", write(workdir, f"""
[[apps]]
name = "ports"
script = "{app('record.py')}"
args = ["{out}", "PORT"]
instances = 3
increment_var = "PORT"
env = {{ PORT = "9100" }}
"""))
    wait_until(lambda: out.exists() and len(out.read_text().splitlines()) == 3, what="three records")
    ports = sorted(json.loads(l)["env"]["PORT"] for l in out.read_text().splitlines())
    assert ports == ["9100", "9101", "9102"]


def test_watchdog_restarts_a_silent_instance(corral: Corral, workdir: Path) -> None:
    corral.run("start", write(workdir, web_toml('NOTIFY = "1", WATCHDOG_EVERY = "0"', 'ready = "notify"\nwatchdog = "500ms"', 1)))
    first = corral.wait_status("web", "online")["pid"]
    wait_until(lambda: corral.row("web")["pid"] not in (None, first) and corral.row("web")["restarts"] >= 1,
               timeout=15, what="a watchdog restart")
    assert "watchdog" in [e["kind"] for e in corral.events("web")]


def test_a_busy_port_is_a_clear_error(corral: Corral, workdir: Path) -> None:
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    port = blocker.getsockname()[1]
    try:
        result = corral.run("start", write(workdir, web_toml().replace(":0\"", f":{port}\"")), check=False)
        assert result.returncode == 1
        failures = [e["message"] for e in corral.events("web") if e["kind"] == "spawn_failed"]
        assert failures[0] == f'cannot listen on tcp://127.0.0.1:{port} for app "web": Address already in use'
        assert f'corral: web[0]: cannot listen on tcp://127.0.0.1:{port} for app "web": Address already in use' \
            in result.stderr.splitlines()
    finally:
        blocker.close()


def test_depends_on_starts_after_ready_and_stops_before(corral: Corral, workdir: Path) -> None:
    corral.run("start", write(workdir, f"""
[[apps]]
name = "web"
cmd = ["sleep", "600"]
depends_on = ["db"]
[[apps]]
name = "db"
script = "{WEBAPP}"
listen = "tcp://127.0.0.1:0"
env = {{ NOTIFY = "1", BOOT_DELAY = "1" }}
ready = "notify"
"""))
    assert corral.row("db")["status"] == "online" and corral.row("web")["status"] == "online"
    events = corral.events()
    db_ready = next(e["ts"] for e in events if e["app"] == "db" and e["kind"] == "ready")
    web_spawn = next(e["ts"] for e in events if e["app"] == "web" and e["kind"] == "spawn")
    assert web_spawn >= db_ready
    corral.run("stop", "all")
    events = corral.events()
    web_stopped = next(e["ts"] for e in events if e["app"] == "web" and e["kind"] == "stopped")
    db_stop = next(e["ts"] for e in events if e["app"] == "db" and e["kind"] == "stop")
    assert db_stop >= web_stopped


def test_unknown_dependency_and_cycles_are_clear_errors(corral: Corral, workdir: Path) -> None:
    result = corral.run("start", write(workdir, '[[apps]]\nname = "web"\ncmd = ["sleep", "60"]\ndepends_on = ["db"]\n'),
                        check=False)
    assert (result.returncode, result.stderr) == (2, 'corral: app "web" depends on "db", which is not defined\n')
    cycle = "".join(f'[[apps]]\nname = "{name}"\ncmd = ["sleep", "60"]\ndepends_on = {deps}\n'
                    for name, deps in [("api", '["web"]'), ("web", '["db"]'), ("db", '["web"]')])
    result = corral.run("start", write(workdir, cycle), check=False)
    assert (result.returncode, result.stderr) == (2, "corral: depends_on forms a cycle: db -> web -> db\n")
    assert all(row["pid"] is None for row in corral.ls())  # nothing was started


def test_starting_a_changed_file_again_reloads_a_cluster_app_without_errors(corral: Corral, workdir: Path) -> None:
    toml = write(workdir, web_toml('NOTIFY = "1", VERSION = "1"', 'ready = "notify"'))
    corral.run("start", toml)
    wait_until(lambda: len(online_pids(corral)) == 2, what="two instances online")
    Path(toml).write_text(web_toml('NOTIFY = "1", VERSION = "2"', 'ready = "notify"'))
    with Load(port_of(corral), threads=4) as load:
        load.wait_requests(100)
        result = corral.run("start", toml)
        load.wait_requests(load.result.ok + 100)
    assert "web: configuration changed, reloaded" in result.stderr
    assert load.result.failed == 0, load.result.failures
    assert get(port_of(corral)).split()[2] == "version=2"


def test_only_the_declared_sockets_reach_the_child(corral: Corral, workdir: Path) -> None:
    out = workdir / "fds.jsonl"
    corral.run("start", write(workdir, f"""
[[apps]]
name = "sock"
script = "{app('fds.py')}"
args = ["{out}"]
listen = ["tcp://127.0.0.1:0", "unix:{workdir / 's.sock'}"]
[[apps]]
name = "plain"
script = "{app('fds.py')}"
args = ["{out}"]
"""))
    wait_until(lambda: out.exists() and len(out.read_text().splitlines()) == 2, what="both records")
    records = {r["listen_fds"]: r for r in map(json.loads, out.read_text().splitlines())}
    with_sockets, without = records["2"], records[None]
    # the reading of /proc/self/fd opens one more fd of its own: the highest number
    assert with_sockets["fds"][:-1] == [0, 1, 2, 3, 4]
    assert with_sockets["listen_pid"] == str(with_sockets["pid"]) and with_sockets["names"] == "sock.0:sock.1"
    assert without["fds"][:-1] == [0, 1, 2] and without["listen_pid"] is None


def test_two_apps_may_each_ask_for_a_free_port(corral: Corral, workdir: Path) -> None:
    corral.run("start", write(workdir, web_toml('NOTIFY = "1"', 'ready = "notify"', 1)
                              + web_toml('NOTIFY = "1"', 'ready = "notify"', 1).replace('name = "web"', 'name = "api"')))
    corral.wait_status("web", "online")
    corral.wait_status("api", "online")
    assert port_of(corral, "web") != port_of(corral, "api")


def test_an_http_probe_during_reload_is_not_fooled_by_the_old_instances(corral: Corral, workdir: Path) -> None:
    corral.run("start", write(workdir, web_toml('BOOT_DELAY = "1"', 'ready = { http = "/healthz", interval = "50ms" }')))
    wait_until(lambda: len(online_pids(corral)) == 2, timeout=20, what="two instances online")
    with Load(port_of(corral), threads=2) as load:
        load.wait_requests(50)
        started = time.time()
        corral.run("reload", "web")
        load.wait_requests(load.result.ok + 50)
    assert load.result.failed == 0, load.result.failures
    ready = [float(e["message"].split()[2].rstrip("s")) for e in corral.events("web")
             if e["kind"] == "ready" and e["ts"] >= started]
    assert len(ready) == 2 and min(ready) >= 1.0, ready  # each new instance was probed itself, after its boot
