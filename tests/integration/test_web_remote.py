"""Remote control (U7): one home's CLI drives a second daemon only through that daemon's HTTP API
on 127.0.0.1 (``--remote``, ``--token-file``, ``CORRAL_REMOTE``/``CORRAL_TOKEN``), the Python
client class, and the API over TLS."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator

import pytest

from corral.web.client import RemoteClient, RemoteUnavailable
from tests.conftest import Corral, app
from tests.webhelp import free_port, start_web


@pytest.fixture
def far() -> Iterator[Corral]:
    """A second daemon with its own CORRAL_HOME."""
    other = Corral(tempfile.mkdtemp(prefix="corral-far-", dir="/tmp"))
    try:
        yield other
    finally:
        leaked = other.teardown()
        shutil.rmtree(other.home, ignore_errors=True)
        assert not leaked


def test_cli_drives_another_daemon_through_its_api(corral: Corral, far: Corral, workdir: Path) -> None:
    corral.run("start", app("worker.py"), "--name", "near")
    far.run("start", app("worker.py"), "--name", "far-app")
    far.wait_status("far-app", "online")
    web = start_web(far)
    url = f"http://127.0.0.1:{web.port}"
    token_file = workdir / "token"
    token_file.write_text(web.full + "\n")
    remote = ("--remote", url, "--token-file", str(token_file))

    rows = json.loads(corral.run(*remote, "ls", "--json").stdout)
    assert {r["name"] for r in rows} == {"far-app", "corral-web"}  # the far daemon's apps, not ours
    assert "far-app" in corral.run(*remote, "ls").stdout
    old = far.row("far-app")["pid"]
    out = corral.run(*remote, "restart", "far-app").stdout
    new = far.wait_status("far-app", "online")["pid"]
    assert new != old and str(new) in out
    assert corral.row("near")["restarts"] == 0  # ours was left alone
    # the environment variables instead of the flags
    env = {"CORRAL_REMOTE": url, "CORRAL_TOKEN": web.read_only}
    info = json.loads(corral.run("describe", "far-app", "--json", env=env).stdout)
    assert info["name"] == "far-app"
    assert {r["name"] for r in json.loads(corral.run("jlist", env=env).stdout)} == {"far-app", "corral-web"}
    logs = corral.run("logs", "far-app", "--lines", "5", env=env).stdout
    assert f"worker pid={new}" in logs
    # a read-only token: the change is refused in one line, exit 2, and nothing happens
    result = corral.run("stop", "far-app", env=env, check=False)
    assert result.returncode == 2
    assert result.stderr == f"corral: {url}: stop: this token is read-only (`corral web token` prints the full one)\n"
    assert far.row("far-app")["status"] == "online"
    result = corral.run("ls", env={**env, "CORRAL_TOKEN": "wrong" * 9}, check=False)
    assert result.returncode == 2 and "the token is not valid" in result.stderr and len(result.stderr.splitlines()) == 1
    result = corral.run("--remote", f"http://127.0.0.1:{free_port()}", "ls", env={"CORRAL_TOKEN": "x" * 43}, check=False)
    assert result.returncode == 1 and result.stderr.startswith("corral: cannot reach http://127.0.0.1:")


def test_python_client_class(far: Corral) -> None:
    far.run("start", app("worker.py"), "--name", "api", "-i", "2")
    web = start_web(far)
    client = RemoteClient(f"http://127.0.0.1:{web.port}", web.full)
    rows = client.call("ls")
    assert sorted((r["name"], r["instance"]) for r in rows if r["name"] == "api") == [("api", 0), ("api", 1)]
    result = client.call("scale", {"target": "api", "count": "-1"})
    assert [r["instance"] for r in result["rows"] if r["name"] == "api"] == [0]
    seen = []
    for message in client.events(target="api", history=3):
        seen.append(message)
        if len(seen) == 3:
            break
    assert all(m["event"]["app"] == "api" for m in seen)


def _self_signed(workdir: Path) -> tuple[str, str]:
    cert, key = workdir / "cert.pem", workdir / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return str(cert), str(key)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl makes the test certificate")
def test_api_over_tls(far: Corral, workdir: Path) -> None:
    cert, key = _self_signed(workdir)
    far.run("start", app("worker.py"), "--name", "api")
    web = start_web(far, "--cert", cert, "--key", key)
    url = f"https://127.0.0.1:{web.port}"
    rows: list[dict[str, Any]] = RemoteClient(url, web.read_only, ca_file=cert).call("ls")
    assert "api" in {r["name"] for r in rows}
    with pytest.raises(RemoteUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
        RemoteClient(url, web.read_only).call("ls")  # an unknown certificate is not trusted
    result = far.run("--remote", url, "ls", env={"CORRAL_TOKEN": web.full, "CORRAL_CA_FILE": cert})
    assert "api" in result.stdout


def test_remote_logs_follow(corral: Corral, far: Corral) -> None:
    far.run("start", app("ticker.py"), "--name", "tick", "--", "100")
    web = start_web(far)
    env = {**corral.env, "CORRAL_REMOTE": f"http://127.0.0.1:{web.port}", "CORRAL_TOKEN": web.read_only}
    proc = subprocess.Popen([sys.executable, "-m", "corral", "logs", "tick", "-f", "--lines", "2", "--raw"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        numbers = []
        while len(numbers) < 8:  # the last 2 lines, then new ones as the app writes them, in order
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.stderr else ""
            numbers.append(int(line.split("tick ", 1)[1].split()[0]))
        assert numbers == list(range(numbers[0], numbers[0] + 8))
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl makes the test certificate")
def test_the_session_cookie_is_secure_over_tls(far: Corral, workdir: Path) -> None:
    import http.client
    import ssl

    cert, key = _self_signed(workdir)
    web = start_web(far, "--cert", cert, "--key", key)
    conn = http.client.HTTPSConnection("127.0.0.1", web.port, timeout=30,
                                       context=ssl.create_default_context(cafile=cert))
    try:
        conn.request("POST", "/api/login", body=json.dumps({"token": web.read_only}),
                     headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        assert response.status == 200 and json.loads(response.read())["role"] == "read-only"
        cookie = response.getheader("Set-Cookie")
        assert cookie.endswith("; Path=/; HttpOnly; SameSite=Strict; Secure")
    finally:
        conn.close()
