"""A real nginx (Debian's package, run as this test's own process on a loopback port) with the
config of ``corral export nginx``, in front of a 2-instance uvicorn app under corral: a rolling
reload under load gives no failed request through nginx; gzip and the static folder's caching work."""

from __future__ import annotations

import gzip
import http.client
import os
import shutil
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import APPS, Corral, wait_until
from tests.integration.test_servers import online, port_of
from tests.loadgen import Load

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx is not installed (Debian: nginx)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False


def start_nginx(folder: Path, include: Path) -> subprocess.Popen[bytes]:
    """nginx in the foreground (``daemon off``), everything it writes in FOLDER."""
    temp = "\n".join(f"    {kind}_temp_path {folder / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    conf = folder / "nginx-test.conf"
    conf.write_text(f"""
{"user root;" if os.geteuid() == 0 else ""}
daemon off;
worker_processes 1;
pid {folder / "nginx.pid"};
error_log {folder / "error.log"} warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
{temp}
    include {include};
}}
""")
    check = subprocess.run([NGINX or "nginx", "-t", "-p", str(folder), "-c", str(conf)], capture_output=True, text=True,
                           timeout=30)
    assert check.returncode == 0, check.stderr
    return subprocess.Popen([NGINX or "nginx", "-p", str(folder), "-c", str(conf)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_a_rolling_reload_through_the_exported_nginx_fails_no_request(corral: Corral, workdir: Path) -> None:
    app_port, nginx_port = free_port(), free_port()
    static = workdir / "static"
    static.mkdir()
    (static / "app.css").write_text("body { color: black; }\n" * 200)
    (workdir / "corral.toml").write_text(f"""
[[apps]]
name = "uv"
cmd = ["{sys.executable}", "-m", "uvicorn", "asgi_app:app", "--fd", "3", "--app-dir", "{APPS}", "--log-level", "warning"]
instances = 2
listen = "tcp://127.0.0.1:{app_port}"
ready = {{ http = "/", interval = "50ms" }}
env = {{ BOOT_DELAY = "0.5" }}
""")
    corral.run("start", "corral.toml", cwd=str(workdir))
    wait_until(lambda: len(online(corral, "uv")) == 2, timeout=30, what="two uvicorn instances")
    assert port_of(corral, "uv") == app_port
    exported = workdir / "nginx"
    done = corral.run("export", "nginx", "corral.toml", "-o", str(exported), "--listen", f"127.0.0.1:{nginx_port}",
                      "--server-name", "localhost", "--static", str(static), cwd=str(workdir))
    assert done.stderr == ""
    text = (exported / "nginx.conf").read_text()
    for line in ("proxy_http_version 1.1;", 'proxy_set_header Connection "";', "keepalive 32;", "gzip on;",
                 "proxy_next_upstream error timeout;  # idempotent requests only (nginx's default)"):
        assert line in [x.strip() for x in text.splitlines()], line
    nginx = start_nginx(workdir, exported / "nginx.conf")
    try:
        wait_until(lambda: _answers(nginx_port), timeout=20, what="nginx to answer")
        _static_is_compressed_and_cached(nginx_port)
        old = online(corral, "uv")
        with Load(nginx_port, threads=4, keep_alive=True) as load:  # as wrk: connections kept
            load.wait_requests(200)
            corral.run("reload", "uv")
            load.wait_requests(load.result.ok + 200)
        result = load.result
        new = online(corral, "uv")
        assert len(new) == 2 and not new & old  # every instance was replaced under the load
        print(f"through nginx: {result.ok} ok, {result.failed} failed {dict(result.failures)}")
        assert result.failed == 0, result.failures
        # the new ones answered through nginx (at least one: nginx keeps its upstream connections
        # alive, and the kernel spreads the few new ones over the slots' SO_REUSEPORT sockets)
        assert {body for body in result.bodies} & {f"pid={p}" for p in new}
    finally:
        nginx.terminate()
        nginx.wait(timeout=30)
    assert nginx.stderr is not None
    nginx.stderr.close()


def _static_is_compressed_and_cached(port: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/static/app.css", headers={"Accept-Encoding": "gzip"})
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    assert response.status == 200
    assert response.getheader("Content-Encoding") == "gzip"
    assert response.getheader("Cache-Control") == "public, max-age=31536000, immutable"
    assert gzip.decompress(body) == b"body { color: black; }\n" * 200
