"""Pure parts of cluster mode: listen addresses, readiness settings, dependency order, notify parsing."""

from __future__ import annotations

import os
import socket

import pytest

from corral.config.cluster import parse_listen, to_depends, to_listen, to_ready, to_reload_mode
from corral.config.convert import Invalid
from corral.lifecycle.order import CycleError, start_layers, stop_layers
from corral.process.sdnotify import parse
from corral.process.listeners import BindError, SocketRegistry


@pytest.mark.parametrize("raw, normalized", [
    ("tcp://127.0.0.1:8000", ["tcp://127.0.0.1:8000"]),
    ("tcp://0.0.0.0:80", ["tcp://0.0.0.0:80"]),
    ("tcp://[::1]:8000", ["tcp://[::1]:8000"]),
    ("127.0.0.1:9000", ["tcp://127.0.0.1:9000"]),
    ("unix:/run/web.sock", ["unix:/run/web.sock"]),
    (["tcp://127.0.0.1:1", "unix:/x.sock"], ["tcp://127.0.0.1:1", "unix:/x.sock"]),
])
def test_listen_addresses(raw: object, normalized: list[str]) -> None:
    assert to_listen(raw) == normalized


@pytest.mark.parametrize("raw", ["http://x:1", "tcp://127.0.0.1", "tcp://h:99999", "unix:", 8000, ["tcp://a:1", 3]])
def test_bad_listen_addresses(raw: object) -> None:
    with pytest.raises(Invalid, match="is not a listen address"):
        to_listen(raw)


def test_parse_listen_parts() -> None:
    assert parse_listen("tcp://127.0.0.1:80") == ("tcp", "127.0.0.1", 80)
    assert parse_listen("unix:/a/b.sock") == ("unix", "", "/a/b.sock")


def test_readiness_settings() -> None:
    assert to_ready("notify") == {"kind": "notify"}
    assert to_ready({"http": "/healthz"}) == {"kind": "http", "interval": 0.1, "timeout": 2.0, "path": "/healthz", "status": 200}
    assert to_ready({"tcp": True, "interval": "1s"})["interval"] == 1.0
    assert to_ready({"cmd": ["check", "--fast"], "timeout": 500})["timeout"] == 0.5
    for bad in ("http", {"http": "healthz"}, {"http": "/", "tcp": True}, {"http": "/", "status": 99}, {"nope": 1}):
        with pytest.raises(Invalid):
            to_ready(bad)


def test_depends_and_reload_mode() -> None:
    assert to_depends("db") == ["db"]
    assert to_depends(["db", "cache"]) == ["db", "cache"]
    assert to_reload_mode("restart") == "restart"
    with pytest.raises(Invalid):
        to_reload_mode("hot")


def test_dependency_layers() -> None:
    deps = {"web": ["db", "cache"], "db": [], "cache": ["db"], "worker": ["db"], "cron": ["elsewhere"]}
    assert start_layers(deps) == [["cron", "db"], ["cache", "worker"], ["web"]]
    assert stop_layers(deps) == [["web"], ["cache", "worker"], ["cron", "db"]]


@pytest.mark.parametrize(("deps", "message"), [
    ({"a": ["b"], "b": ["a"], "c": []}, "a -> b -> a"),
    # an app depending on the cycle is not in it, and neither is one the cycle depends on
    ({"a": ["b"], "b": ["a", "db"], "c": ["a"], "db": []}, "a -> b -> a"),
    ({"web": ["db"], "db": ["cache"], "cache": ["web"], "api": ["web"], "aaa": ["cache"]},
     "cache -> web -> db -> cache"),
    ({"z": ["y"], "y": ["x"], "x": ["z"]}, "x -> z -> y -> x"),  # each app depends on the next
])
def test_dependency_cycle_names_exactly_the_apps_in_it_in_order(deps: dict[str, list[str]], message: str) -> None:
    with pytest.raises(CycleError) as caught:
        start_layers(deps)
    assert str(caught.value) == f"depends_on forms a cycle: {message}"
    assert caught.value.cycle == message.split(" -> ")


def test_dependency_layers_ignore_self_and_outside_names() -> None:
    assert start_layers({"a": ["a", "elsewhere"], "b": ["a"]}) == [["a"], ["b"]]
    assert start_layers({}) == []


def test_notify_datagram_parsing() -> None:
    assert parse(b"READY=1\nSTATUS=warming up\n") == {"READY": "1", "STATUS": "warming up"}
    assert parse(b"WATCHDOG=1") == {"WATCHDOG": "1"}
    assert parse(b"garbage\n=x\n") == {}


def test_socket_registry_binds_port_zero_once_per_app_and_refuses_sharing(tmp_path: object) -> None:
    reg = SocketRegistry()
    try:
        fds = [reg.fds("web", ["tcp://127.0.0.1:0"], slot)[0] for slot in (0, 1)]
        ports = set()
        for fd in fds:
            with socket.socket(fileno=os.dup(fd)) as sock:
                ports.add(sock.getsockname()[1])
        assert len(set(fds)) == 2 and len(ports) == 1  # one SO_REUSEPORT socket per slot, same port
        assert reg.fds("web", ["tcp://127.0.0.1:0"], 0) == [fds[0]]  # a slot keeps its socket
        resolved = reg.resolved("web", ["tcp://127.0.0.1:0"])[0]
        assert resolved == f"tcp://127.0.0.1:{ports.pop()}"
        reg.fds("api", ["tcp://127.0.0.1:0"], 0)  # port 0 is "any free port": every app may ask
        fixed = resolved.replace("127.0.0.1", "127.0.0.2")
        reg.fds("web3", [fixed], 0)
        with pytest.raises(BindError, match='app "web3" already listens there'):
            reg.fds("api", [fixed], 0)
        path = f"/tmp/corral-test-{os.getpid()}.sock"
        unix = reg.fds("web2", [f"unix:{path}"], 0) + reg.fds("web2", [f"unix:{path}"], 1)
        assert unix[0] == unix[1] and os.path.exists(path)  # one shared unix socket
        reg.release_app("web2")
        assert not os.path.exists(path)
    finally:
        reg.close_all()


def test_tcp_listeners_pass_nodelay_to_accepted_connections() -> None:
    reg = SocketRegistry()
    try:
        fd = reg.fds("web", ["tcp://127.0.0.1:0"], 0)[0]
        with socket.socket(fileno=os.dup(fd)) as listener:
            client = socket.create_connection(listener.getsockname())
            conn, _ = listener.accept()
            with client, conn:
                assert conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    finally:
        reg.close_all()
