"""PM2's cluster mode and IPC habits on Debian's node: a plain `http` app whose port is only in its
code (`process.env.PORT || 3000`) runs as 2 instances on corral's sockets, reloads under load
without a failed request, scales; `process.send('ready')`, `shutdown_with_message`; other apps
are left alone."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Corral, app, pid_alive, wait_until
from tests.loadgen import Load

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")

SERVER = app("cluster_http.js")
PRELOAD = str(Path(__file__).resolve().parents[2] / "corral" / "process" / "cluster_preload.cjs")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ecosystem(workdir: Path, **app_keys: Any) -> str:
    """A PM2 ecosystem file (JSON) with one app running cluster_http.js."""
    path = workdir / "ecosystem.json"
    path.write_text(json.dumps({"apps": [{"name": "web", "script": SERVER, **app_keys}]}))
    return str(path)


def online(corral: Corral, name: str = "web") -> dict[int, int]:
    return {r["instance"]: r["pid"] for r in corral.ls() if r["name"] == name and r["status"] == "online"}


def answers(port: int, requests: int = 60) -> set[str]:
    """The pids that answered REQUESTS new connections to 127.0.0.1:PORT."""
    seen = set()
    for _ in range(requests):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
            seen.add(response.read().decode().split()[0])
    return seen


def serving(corral: Corral, port: int, count: int) -> dict[int, int]:
    """Wait until COUNT instances are online and every one of them answers on PORT (an app in fork
    mode is online before it listens: a refused connection means not yet)."""
    pids = wait_until(lambda: (p := online(corral)) and len(p) == count and p, 20, f"{count} instances online")

    def all_answer() -> bool:
        try:
            return answers(port) == {f"pid={p}" for p in pids.values()}
        except OSError:
            return False

    wait_until(all_answer, 20, f"all {count} answering")
    return pids


def describe(corral: Corral, name: str = "web") -> dict[str, Any]:
    info = json.loads(corral.run("describe", name, "--json").stdout)
    return info[0] if isinstance(info, list) else info


def environ(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/environ", "rb") as f:
        pairs = [item.split(b"=", 1) for item in f.read().split(b"\0") if b"=" in item]
    return {k.decode(): v.decode(errors="replace") for k, v in pairs}


def cmdline(pid: int) -> list[str]:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return [a.decode() for a in f.read().split(b"\0")[:-1]]


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_two_instances_share_the_port_of_their_code_and_describe_shows_it(corral: Corral, workdir: Path) -> None:
    port = free_port()
    corral.run("start", ecosystem(workdir, exec_mode="cluster", instances=2, env={"PORT": port}))
    pids = serving(corral, port, 2)
    info = describe(corral)
    assert info["listen"] == [f"tcp://[::]:{port}"]
    assert info["listen_inferred"] == {f"tcp://[::]:{port}": [0, 1]}
    listens = [e for e in corral.events("web") if e["kind"] == "listen"]
    assert [e["message"] for e in listens] == [
        f"listens on tcp://[::]:{port} (the port its code listens on, cluster mode)"]
    ready = [e["message"] for e in corral.events("web") if e["kind"] == "ready"]
    assert len(ready) == 2 and all(m.startswith("listening after ") for m in ready)
    for pid in pids.values():
        assert cmdline(pid)[:3] == ["node", "-r", PRELOAD]
        assert "NODE_CHANNEL_FD" in environ(pid)
    # a crashed instance's replacement inherits its slot's socket at once
    os.kill(pids[0], signal.SIGKILL)
    new = wait_until(lambda: (p := online(corral)) and p.get(0) not in (None, pids[0]) and p, 20, "a replacement")
    assert environ(new[0])["CORRAL_NODE_INFERRED"].endswith(f"=tcp://[::]:{port}")
    assert answers(port) == {f"pid={p}" for p in new.values()}


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET6) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # connections in TIME_WAIT do not count
        try:
            s.bind(("::", port))
        except OSError:
            return False
    return True


@pytest.mark.skipif(not port_free(3000), reason="port 3000 is in use on this machine")
def test_the_default_port_of_the_code_with_nothing_in_the_file(corral: Corral, workdir: Path) -> None:
    """`app.listen(process.env.PORT || 3000)` with no PORT anywhere: the real file's case."""
    corral.run("start", ecosystem(workdir, exec_mode="cluster", instances=2))
    serving(corral, 3000, 2)
    assert describe(corral)["listen"] == ["tcp://[::]:3000"]


def test_listen_with_an_options_object_and_a_host_name(corral: Corral, workdir: Path) -> None:
    port = free_port()
    corral.run("start", ecosystem(workdir, exec_mode="cluster", instances=2,
                                  env={"PORT": port, "LISTEN_HOST": "localhost"}))
    serving(corral, port, 2)
    node_says = subprocess.run(["node", "-e", "require('dns').lookup('localhost', (e, a) => console.log(a))"],
                               capture_output=True, text=True, check=True).stdout.strip()  # as its listen resolves
    address = f"tcp://[{node_says}]:{port}" if ":" in node_says else f"tcp://{node_says}:{port}"
    assert describe(corral)["listen_inferred"] == {address: [0, 1]}


def test_rolling_reload_under_load_loses_no_request(corral: Corral, workdir: Path) -> None:
    port = free_port()
    corral.run("start", ecosystem(workdir, exec_mode="cluster", instances=2, stop_signal="SIGINT",
                                  env={"PORT": port, "BOOT_DELAY": "1"}))
    old = serving(corral, port, 2)
    with Load(port, threads=4) as load:
        load.wait_requests(200)
        started = time.monotonic()
        result = corral.run("reload", "web")
        took = time.monotonic() - started
        load.wait_requests(load.result.ok + 200)
    assert load.result.failed == 0, load.result.failures
    new = online(corral)
    assert len(new) == 2 and not set(new.values()) & set(old.values())
    assert not [p for p in old.values() if pid_alive(p)]
    assert {f"pid={p}" for p in new.values()} <= {b.split()[0] for b in load.result.bodies}
    assert took >= 2.0  # each new instance booted (1 s) before its old one was stopped
    assert result.stdout.count("reloaded web[") == 2


def test_scale_2_to_3_and_back(corral: Corral, workdir: Path) -> None:
    port = free_port()
    corral.run("start", ecosystem(workdir, instances=2, env={"PORT": port}))  # instances > 1: cluster
    serving(corral, port, 2)
    with Load(port, threads=2) as load:
        load.wait_requests(50)
        rows = json.loads(corral.run("scale", "web", "3", "--json").stdout)
        assert [r["status"] for r in rows] == ["online"] * 3
        serving(corral, port, 3)
        load.wait_requests(load.result.ok + 100)
        corral.run("scale", "web", "2")
        load.wait_requests(load.result.ok + 100)
    assert load.result.failed == 0, load.result.failures
    assert describe(corral)["listen_inferred"] == {f"tcp://[::]:{port}": [0, 1]}
    assert len(answers(port)) == 2


def test_a_port_in_use_is_the_apps_own_eaddrinuse(corral: Corral, workdir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        corral.run("start", ecosystem(workdir, exec_mode="cluster", instances=2, max_restarts=0,
                                      env={"PORT": port}))
        for instance in (0, 1):
            corral.wait_status("web", "errored", timeout=20, instance=instance)
            log = (Path(corral.home) / "logs" / f"web-error-{instance}.log").read_text()
            assert f"Error: listen EADDRINUSE: address already in use :::{port}" in log
            assert "cluster_preload.cjs" not in log  # the app's error, not corral's
        info = describe(corral)
        assert info["listen_inferred"] == {}
        assert info["argv"] == ["node", "-r", PRELOAD, SERVER]
        assert info["last_crash"]["exc_type"] == "Error" and "EADDRINUSE" in info["last_crash"]["summary"]


def test_declared_listen_wins_over_the_host_the_code_asks_for(corral: Corral, workdir: Path) -> None:
    port = free_port()
    corral.run("start", ecosystem(workdir, exec_mode="cluster", instances=2, listen=f"tcp://127.0.0.1:{port}",
                                  env={"PORT": port}))
    pids = serving(corral, port, 2)
    assert describe(corral)["listen_inferred"] == {}
    assert all(environ(p)["CORRAL_NODE_LISTEN"] == f"3=tcp://127.0.0.1:{port}" for p in pids.values())


def test_the_inferred_port_survives_a_daemon_restart_and_resurrect(corral: Corral, workdir: Path) -> None:
    port = free_port()
    corral.run("start", ecosystem(workdir, exec_mode="cluster", instances=2, env={"PORT": port}))
    serving(corral, port, 2)
    corral.expect_daemon_restart()
    daemon = corral.daemon_pid()
    assert daemon is not None
    os.kill(daemon, signal.SIGKILL)
    wait_until(lambda: not pid_alive(daemon), 10, "the daemon to die")
    corral.run("ping")
    assert describe(corral)["listen_inferred"] == {f"tcp://[::]:{port}": [0, 1]}
    pids = serving(corral, port, 2)
    assert all(environ(p)["CORRAL_NODE_INFERRED"].endswith(f"=tcp://[::]:{port}") for p in pids.values())
    corral.run("save")  # and through save / kill / resurrect
    corral.expect_daemon_restart()
    corral.run("kill")
    corral.run("resurrect")
    assert describe(corral)["listen_inferred"] == {f"tcp://[::]:{port}": [0, 1]}
    serving(corral, port, 2)


def test_process_send_ready_is_ready(corral: Corral, workdir: Path) -> None:
    port = free_port()
    corral.run("start", ecosystem(workdir, wait_ready=True, listen_timeout=8000,
                                  env={"PORT": port, "BOOT_DELAY": "1", "READY_MESSAGE": "1"}))
    assert corral.row("web")["status"] == "launching"
    corral.wait_status("web", "online", timeout=10)
    (ready,) = [e["message"] for e in corral.events("web") if e["kind"] == "ready"]
    assert ready.startswith("ready after ") and float(ready.split()[2].rstrip("s")) >= 1.0
    pid = corral.row("web")["pid"]
    assert cmdline(pid)[1:] == [SERVER]  # a channel, no preload: one instance in fork mode
    assert answers(port, 3) == {f"pid={pid}"}


def test_without_the_message_wait_ready_is_not_ready(corral: Corral, workdir: Path) -> None:
    corral.run("start", ecosystem(workdir, wait_ready=True, ready_timeout=600, max_restarts=0,
                                  env={"PORT": free_port()}))
    corral.wait_status("web", "errored", timeout=15)
    assert [e["kind"] for e in corral.events("web") if e["kind"] == "not_ready"] == ["not_ready"]


def test_shutdown_with_message_stops_through_the_apps_handler(corral: Corral, workdir: Path) -> None:
    port, out = free_port(), workdir / "rec.jsonl"
    corral.run("start", ecosystem(workdir, shutdown_with_message=True, kill_timeout=8000,
                                  env={"PORT": port, "RECORD": str(out)}))
    serving(corral, port, 1)
    pid = corral.row("web")["pid"]
    started = time.monotonic()
    corral.run("stop", "web")
    took = time.monotonic() - started
    assert corral.row("web")["status"] == "stopped"
    assert [r["what"] for r in records(out) if r["pid"] == pid] == [f"listening {port}", "shutdown"]
    assert took < 5  # its handler ended it, not SIGKILL after kill_timeout (8 s)
    assert not [e for e in corral.events("web") if e["kind"] in ("exit", "kill")]  # asked for; no SIGKILL
    assert describe(corral)["instances"][0]["last_exit"]["code"] == 0


def test_shutdown_with_message_falls_back_to_sigkill_after_kill_timeout(corral: Corral, workdir: Path) -> None:
    """PM2's behaviour: an app that ignores the message is killed after kill_timeout, not signalled."""
    out = workdir / "rec.jsonl"
    (workdir / "deaf.js").write_text(
        "const fs = require('fs');\n"
        f"process.on('SIGTERM', () => fs.appendFileSync({json.dumps(str(out))}, 'SIGTERM\\n'));\n"
        "setInterval(() => {}, 1000);\n")
    (workdir / "ecosystem.json").write_text(json.dumps({"apps": [{
        "name": "deaf", "script": str(workdir / "deaf.js"), "shutdown_with_message": True, "kill_timeout": 700}]}))
    corral.run("start", str(workdir / "ecosystem.json"))
    corral.wait_status("deaf", "online")
    corral.run("stop", "deaf")
    assert [e["kind"] for e in corral.events("deaf") if e["kind"] == "kill"] == ["kill"]
    assert not out.exists()


def test_apps_that_are_not_node_cluster_get_nothing(corral: Corral, workdir: Path) -> None:
    port = free_port()
    (workdir / "ecosystem.json").write_text(json.dumps({"apps": [
        {"name": "web", "script": SERVER, "env": {"PORT": port}},  # fork mode, one instance
        {"name": "py", "script": app("worker.py"), "exec_mode": "cluster", "instances": 2, "wait_ready": True,
         "listen_timeout": 3000},
    ]}))
    corral.run("start", str(workdir / "ecosystem.json"))
    serving(corral, port, 1)
    node_pid = corral.row("web")["pid"]
    assert cmdline(node_pid) == ["node", SERVER]
    assert not {k for k in environ(node_pid) if k.startswith(("NODE_CHANNEL", "CORRAL_NODE"))}
    py = [r["pid"] for r in corral.ls() if r["name"] == "py" and r["pid"]]
    assert len(py) == 2
    for pid in py:
        assert "-r" not in cmdline(pid) and "NODE_CHANNEL_FD" not in environ(pid)
    assert describe(corral, "py")["listen_inferred"] == {}


@pytest.mark.skipif(os.geteuid() != 0, reason="running an app as another user needs a root daemon")
def test_an_app_run_as_another_user_gets_ports_only_the_daemon_binds(corral: Corral, workdir: Path) -> None:
    import pwd

    try:
        pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user nobody")
    port = free_port()
    (workdir / "ecosystem.json").write_text(json.dumps({"apps": [
        {"name": "web", "script": SERVER, "instances": 2, "user": "nobody", "env": {"PORT": port}},
        {"name": "low", "script": SERVER, "instances": 2, "user": "nobody", "max_restarts": 0, "env": {"PORT": 999}},
    ]}))
    corral.run("start", str(workdir / "ecosystem.json"))
    pids = serving(corral, port, 2)
    assert {os.stat(f"/proc/{p}").st_uid for p in pids.values()} == {pwd.getpwnam("nobody").pw_uid}
    log = Path(corral.home) / "logs" / "low-error-0.log"
    wait_until(lambda: log.exists() and "Error: listen EACCES: permission denied :::999" in log.read_text(), 20,
               "a port below 1024 refused as the kernel would refuse it to the user")


def test_an_es_module_app_in_a_module_package(corral: Corral, workdir: Path) -> None:
    """`"type": "module"`: the app imports node:http; the preload (CommonJS, .cjs) patches the same server."""
    port = free_port()
    (workdir / "package.json").write_text('{"type": "module"}\n')
    (workdir / "server.js").write_text(
        "import http from 'node:http';\n"
        "http.createServer((req, res) => res.end(`pid=${process.pid}\\n`)).listen(process.env.PORT || 3000);\n")
    (workdir / "ecosystem.json").write_text(json.dumps({"apps": [
        {"name": "web", "script": str(workdir / "server.js"), "instances": 2, "env": {"PORT": port}}]}))
    corral.run("start", str(workdir / "ecosystem.json"))
    serving(corral, port, 2)
    assert describe(corral)["listen_inferred"] == {f"tcp://[::]:{port}": [0, 1]}
