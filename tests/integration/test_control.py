"""The daemon never dies from a client: malformed messages, unknown operations, vanishing clients."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from tests.conftest import Corral


def raw(corral: Corral, payload: bytes) -> list[dict]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect(str(Path(corral.home) / "corral.sock"))
    try:
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the daemon may answer and hang up before reading everything
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    sock.close()
    return [json.loads(line) for line in data.splitlines()]


def test_bad_messages_get_error_replies(corral: Corral) -> None:
    corral.run("ping")
    replies = raw(corral, b"not json\n[1,2]\n{\"id\": 7, \"op\": \"explode\"}\n{\"id\": 8, \"op\": \"stop\", \"args\": 5}\n"
                          b"{\"id\": 9, \"op\": \"stop\", \"args\": {}}\n{\"id\": 10, \"op\": \"ping\"}\n")
    assert [r.get("error", {}).get("code") for r in replies] == [
        "bad_request", "bad_request", "bad_request", "bad_request", "user_error", None]
    assert replies[2]["error"]["message"] == "unknown operation 'explode'"
    assert replies[5]["result"]["pid"] == corral.daemon_pid()


def test_a_client_that_disconnects_mid_request_is_dropped(corral: Corral) -> None:
    corral.run("start", "--name", "s", "--", "sleep", "600")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(Path(corral.home) / "corral.sock"))
    sock.sendall(b'{"id": 1, "op": "stop", "args": {"target": "s"}}\n{"id": 2, "op": "ls"')
    sock.close()
    corral.wait_status("s", "stopped")
    assert corral.run("ping").returncode == 0


def test_an_oversized_message_is_refused(corral: Corral) -> None:
    corral.run("ping")
    replies = raw(corral, b"{" + b" " * (17 * 1024 * 1024))
    assert replies[0]["error"]["message"] == "message too long"
    assert corral.run("ping").returncode == 0


def test_two_homes_are_two_daemons(corral: Corral, tmp_path: Path) -> None:
    import tempfile

    other = Corral(tempfile.mkdtemp(prefix="corral-", dir="/tmp"))
    try:
        corral.run("start", "--name", "one", "--", "sleep", "600")
        other.run("start", "--name", "two", "--", "sleep", "600")
        assert [r["name"] for r in corral.ls()] == ["one"]
        assert [r["name"] for r in other.ls()] == ["two"]
        assert corral.daemon_pid() != other.daemon_pid()
    finally:
        assert other.teardown() == []
