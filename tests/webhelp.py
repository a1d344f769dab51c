"""Helpers for the web tests: start the web process of a test's home, and talk HTTP to it."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
from typing import Any

from tests.conftest import PYTHON, Corral, wait_until


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Web:
    """The API of one home: ``corral web`` started it as the app corral-web."""

    def __init__(self, corral: Corral, port: int) -> None:
        self.corral, self.port = corral, port
        self.full = corral.run("web", "token").stdout.strip()
        self.read_only = corral.run("web", "token", "--read-only").stdout.strip()

    def request(self, method: str, path: str, body: Any = None, token: str | None = None,
                headers: dict[str, str] | None = None, raw: bytes | None = None) -> tuple[int, Any, http.client.HTTPResponse]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        sent = dict(headers or {})
        if token:
            sent["Authorization"] = f"Bearer {token}"
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        try:
            conn.request(method, path, body=data, headers=sent)
            response = conn.getresponse()
            payload = response.read()
        finally:
            conn.close()
        try:
            decoded = json.loads(payload) if payload else None
        except ValueError:
            decoded = payload
        return response.status, decoded, response

    def get(self, path: str, token: str | None = None) -> tuple[int, Any]:
        status, data, _ = self.request("GET", path, token=token)
        return status, data

    def post(self, path: str, body: Any, token: str | None = None, **kw: Any) -> tuple[int, Any]:
        status, data, _ = self.request("POST", path, body, token=token, **kw)
        return status, data


def start_web(corral: Corral, *extra: str) -> Web:
    port = free_port()
    corral.run("web", "--listen", f"127.0.0.1:{port}", *extra)

    def up() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            return False

    wait_until(up, 30, "the web process to listen")
    return Web(corral, port)


def run_web_directly(corral: Corral, *args: str) -> tuple[subprocess.Popen[str], int]:
    """The web process run by the test itself (for options ``corral web`` does not offer)."""
    port = free_port()
    proc = subprocess.Popen([PYTHON, "-m", "corral.web", "--listen", f"127.0.0.1:{port}", *args],
                            env=corral.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert "listening on" in line, line + proc.stderr.read() if proc.stderr else ""
    return proc, port
