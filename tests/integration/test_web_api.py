"""The HTTP API against a real daemon with real apps: tokens and roles, the browser's cookie with
its CSRF and Origin checks, the Host check, the SSE stream, and bad input that changes nothing."""

from __future__ import annotations

import http.client
import json
import os
import socket
import threading
import time
from typing import Any

from tests.conftest import Corral, app, pid_alive, wait_until
from tests.webhelp import run_web_directly, start_web


def _started(corral: Corral, *names: str) -> None:
    for name in names:
        corral.run("start", app("worker.py"), "--name", name)
        corral.wait_status(name, "online")


def test_tokens_roles_and_routes(corral: Corral) -> None:
    _started(corral, "api")
    web = start_web(corral)
    assert web.get("/api/apps") == (401, {"error": "a token is needed (Authorization: Bearer TOKEN; "
                                                    "`corral web token` prints it)"})
    status, body = web.get("/api/apps", token="x" * 43)
    assert status == 401 and "not valid" in body["error"]
    status, rows = web.get("/api/apps", token=web.read_only)
    assert status == 200 and {r["name"] for r in rows} == {"api", "corral-web"}
    old = corral.row("api")["pid"]
    assert web.post("/api/restart", {"target": "api"}, token=web.read_only) == (
        403, {"error": "restart: this token is read-only (`corral web token` prints the full one)"})
    assert corral.row("api")["pid"] == old  # nothing was done
    status, result = web.post("/api/restart", {"target": "api"}, token=web.full)
    assert status == 200 and result["rows"][0]["name"] == "api"
    new = corral.wait_status("api", "online")["pid"]
    assert new != old and not pid_alive(old)
    # every declared operation has its route, except kill and subscribe (the SSE stream)
    status, ops = web.get("/api/ops", token=web.read_only)
    assert status == 200 and "/api/kill" not in ops and "/api/subscribe" not in ops
    assert ops["/api/restart"]["methods"] == ["POST"] and ops["/api/ls"]["methods"] == ["GET", "POST"]
    status, info = web.get("/api/describe?target=api", token=web.read_only)
    assert status == 200 and info[0]["name"] == "api"
    assert web.get("/api/restart?target=api", token=web.full)[0] == 405  # a change is a POST


def test_token_file_is_private_and_rotation_ends_old_tokens(corral: Corral) -> None:
    web = start_web(corral)
    path = os.path.join(corral.home, "web-tokens.json")
    assert os.stat(path).st_mode & 0o777 == 0o600
    old = web.full
    new = corral.run("web", "token", "--rotate").stdout.strip()
    assert new != old and len(new) >= 40
    assert web.get("/api/ping", token=old)[0] == 401
    assert web.get("/api/ping", token=new)[0] == 200
    os.unlink(path)
    os.symlink("/etc/hostname", path)  # a link planted at the token's path is never followed
    result = corral.run("web", "token", check=False)
    assert result.returncode == 2 and "not a link" in result.stderr and len(result.stderr.splitlines()) == 1


def test_cookie_session_csrf_origin_and_host(corral: Corral) -> None:
    _started(corral, "api")
    web = start_web(corral)
    status, body, response = web.request("POST", "/api/login", {"token": "wrong" * 10})
    assert status == 401
    status, session, response = web.request("POST", "/api/login", {"token": web.full})
    cookie = response.getheader("Set-Cookie")
    assert status == 200 and session["role"] == "full"
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    jar = {"Cookie": cookie.split(";")[0]}
    assert web.get("/api/apps")[0] == 401
    assert web.request("GET", "/api/apps", headers=jar)[0] == 200
    old = corral.row("api")["pid"]
    status, body = web.post("/api/restart", {"target": "api"}, headers=jar)
    assert (status, body) == (403, {"error": "a change from the browser needs the x-corral-csrf header"})
    own = f"http://127.0.0.1:{web.port}"
    status, body = web.post("/api/restart", {"target": "api"},
                            headers={**jar, "X-Corral-CSRF": session["csrf"], "Origin": "http://evil.example"})
    assert status == 403 and "origin" in body["error"]
    assert corral.row("api")["pid"] == old
    status, body = web.post("/api/restart", {"target": "api"}, headers={**jar, "X-Corral-CSRF": session["csrf"],
                                                                         "Origin": own})
    assert status == 200
    assert corral.wait_status("api", "online")["pid"] != old
    # DNS rebinding: a name that is not this server's is refused, token or not
    status, body = web.post("/api/ls", {}, token=web.full, headers={"Host": f"evil.example:{web.port}"})
    assert status == 403 and "evil.example" in body["error"]
    status, _, response = web.request("GET", "/")
    assert status == 200 and "frame-ancestors 'none'" in response.getheader("Content-Security-Policy")


class SSE:
    """A Server-Sent Events client in a thread: every (event, data, time received)."""

    def __init__(self, port: int, token: str, path: str = "/api/stream?metrics=0") -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        self.sock = self.conn.sock  # the response keeps it open: closing it hangs up for real
        self.response = self.conn.getresponse()
        assert self.response.status == 200
        assert self.response.getheader("Content-Type") == "text/event-stream"
        self.got: list[tuple[str, Any, float]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        kind = ""
        try:
            for raw in self.response:
                line = raw.decode().rstrip("\r\n")
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: "):
                    self.got.append((kind, json.loads(line[6:]), time.monotonic()))
        except (OSError, ValueError):
            pass

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.conn.close()


def test_sse_has_the_restart_within_a_second(corral: Corral) -> None:
    _started(corral, "api")
    web = start_web(corral)
    # history=1: the last stored event comes once the subscription is live (one step in the daemon)
    stream = SSE(web.port, web.read_only, "/api/stream?target=api&metrics=0&history=1")
    try:
        wait_until(lambda: any(kind == "event" for kind, _, _ in stream.got), 10, "the stream's first event")
        status, result = web.post("/api/restart", {"target": "api"}, token=web.full)
        answered = time.monotonic()
        assert status == 200
        new = result["rows"][0]["pid"]

        def spawned() -> float | None:
            for kind, data, at in stream.got:
                if kind == "event" and data["kind"] == "spawn" and data["data"].get("pid") == new:
                    return at
            return None

        at = wait_until(spawned, 10, "the new instance's spawn event on the stream")
        assert at - answered < 1.0, f"the event came {at - answered:.2f}s after the restart's answer"
        assert all(data["app"] == "api" for kind, data, _ in stream.got if kind == "event")
    finally:
        stream.close()


def test_sse_carries_metrics(corral: Corral, workdir: Any) -> None:
    (workdir / "corral.toml").write_text(f'monitor_interval = "1s"\n[[apps]]\nname = "api"\n'
                                         f'script = "{app("worker.py")}"\n')
    corral.run("start", str(workdir / "corral.toml"))
    web = start_web(corral)
    stream = SSE(web.port, web.read_only, "/api/stream?metrics=0.5")
    try:
        def sampled() -> bool:
            return any(kind == "metrics" and any(i["app"] == "api" for i in data.get("instances", []))
                       for kind, data, _ in stream.got)

        wait_until(sampled, 20, "a metrics message naming api")
    finally:
        stream.close()


def test_bad_input_is_refused_in_one_line_and_changes_nothing(corral: Corral) -> None:
    _started(corral, "api")
    proc, port = run_web_directly(corral, "--client-timeout", "1")
    from tests.webhelp import Web

    web = Web.__new__(Web)
    web.corral, web.port = corral, port
    web.full = corral.run("web", "token").stdout.strip()
    try:
        cases = [
            (web.request("POST", "/api/scale", raw=b'{"target": "api", ', token=web.full), 400, "the body is not JSON"),
            (web.request("POST", "/api/frobnicate", {}, token=web.full), 404, "no such route: /api/frobnicate"),
            (web.request("POST", "/api/scale", {"target": "api", "count": "abc"}, token=web.full), 400,
             'scale: "abc" is not a number of instances'),
            (web.request("POST", "/api/restart", {"target": "api", "bogus": 1}, token=web.full), 400,
             "restart: unknown argument"),
            (web.request("POST", "/api/restart", [1, 2], token=web.full), 400, "must be a JSON object"),
            (web.request("GET", "/api/events?limit=many", token=web.full), 400, "not a whole number"),
        ]
        for (status, body, _), want_status, want in cases:
            assert status == want_status and want in body["error"] and "\n" not in body["error"], body
        # a 10 MB body: refused from its Content-Length, before it is read
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            s.sendall(f"POST /api/start HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {web.full}\r\n"
                      f"Content-Length: {10 * 1024 * 1024}\r\n\r\n".encode() + b"x" * 65536)
            head = s.recv(4096).decode()
            assert head.startswith("HTTP/1.1 413 ") and "over the 1048576 allowed" in head
        # a slow client: half a request head, then nothing: dropped after the timeout
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            s.sendall(b"GET /api/ls HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            answer = s.recv(4096).decode()
            assert answer.startswith("HTTP/1.1 408 ") and time.monotonic() - started < 10
            assert s.recv(4096) == b""  # and closed
        # a garbage request line
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            s.sendall(b"\x16\x03\x01 hello\r\n\r\n")
            assert s.recv(4096).decode().startswith("HTTP/1.1 400 ")
        assert proc.poll() is None  # the web process is still up...
        status, rows, _ = web.request("GET", "/api/apps", token=web.full)
        assert status == 200 and rows[0]["name"] == "api" and rows[0]["instance"] == 0 and len(rows) == 1
        assert corral.row("api")["restarts"] == 0  # ...the daemon too, and nothing was changed
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


def test_off_loopback_needs_tls_or_insecure(corral: Corral) -> None:
    result = corral.run("web", "--listen", "0.0.0.0:19999", check=False)
    assert result.returncode == 2
    assert result.stderr.strip() == ("corral: --listen 0.0.0.0:19999: not loopback, so TLS is needed "
                                     "(--cert and --key), or --insecure to send tokens in the clear")
    assert "corral-web" not in {r["name"] for r in corral.ls()}


def test_web_table_in_the_file(corral: Corral, workdir: Any) -> None:
    from tests.webhelp import Web, free_port

    port = free_port()
    (workdir / "corral.toml").write_text(f'web = {{ listen = "127.0.0.1:{port}" }}\n'
                                         f'[[apps]]\nname = "api"\nscript = "{app("worker.py")}"\n')
    assert corral.run("validate", str(workdir / "corral.toml")).stderr == ""
    corral.run("start", str(workdir / "corral.toml"))
    corral.wait_status("corral-web", "online")
    web = Web(corral, port)
    wait_until(lambda: _answers(web), 30, "the API of the file's web table")
    status, rows = web.get("/api/apps", token=web.read_only)
    assert status == 200 and {r["name"] for r in rows} == {"api", "corral-web"}
    # off loopback: TLS, or insecure = true, which validate warns about
    (workdir / "open.toml").write_text('web = { listen = "0.0.0.0:9616" }\n[[apps]]\nname = "x"\ncmd = ["true"]\n')
    result = corral.run("validate", str(workdir / "open.toml"), check=False)
    assert result.returncode == 2
    assert result.stderr == (f"corral: {workdir / 'open.toml'}: web: listens on 0.0.0.0:9616, not loopback: give cert "
                             "and key (TLS), or insecure = true to send tokens in the clear\n")
    (workdir / "open.toml").write_text('web = { listen = "0.0.0.0:9616", insecure = true }\n'
                                       '[[apps]]\nname = "x"\ncmd = ["true"]\n')
    result = corral.run("validate", str(workdir / "open.toml"))
    assert result.stderr == (f"corral: warning: {workdir / 'open.toml'}: web: insecure = true: tokens and cookies "
                             "cross the network in the clear on 0.0.0.0:9616\n")


def _answers(web: Any) -> bool:
    try:
        return web.get("/api/ping", token=web.full)[0] == 200
    except OSError:
        return False


def test_event_streams_are_bounded(corral: Corral) -> None:
    from corral.web.server import MAX_STREAMS

    web = start_web(corral)
    streams = [SSE(web.port, web.read_only, "/api/stream?metrics=0&history=1") for _ in range(MAX_STREAMS)]
    try:
        for s in streams:  # each one live: its history came
            wait_until(lambda s=s: bool(s.got), 30, "every stream's first event")
        status, body = web.get("/api/stream?metrics=0", token=web.read_only)
        assert (status, body) == (503, {"error": f"too many event streams open (at most {MAX_STREAMS})"})
        assert web.get("/api/ping", token=web.read_only)[0] == 200  # everything else still answers
    finally:
        for s in streams:
            s.close()
    wait_until(lambda: _stream_opens(web), 30, "a stream to open again once the others closed")


def _stream_opens(web: Any) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", web.port, timeout=30)
    try:
        conn.request("GET", "/api/stream?metrics=0", headers={"Authorization": f"Bearer {web.read_only}"})
        return conn.getresponse().status == 200
    finally:
        conn.close()
