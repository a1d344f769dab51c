"""GET /metrics against a real daemon: scraped with urllib, parsed with Prometheus' own parser
(prometheus_client), the token, bad requests and slow clients that must not block ``corral ls``."""

from __future__ import annotations

import json
import socket
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import APPS, Corral, wait_until

TOKEN = "s3cret-token-for-the-scraper"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write(workdir: Path, body: str) -> str:
    path = workdir / "corral.toml"
    path.write_text(body)
    return str(path)


def scrape(port: int, token: str | None = None) -> tuple[int, str, dict[str, str]]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as reply:
            return reply.status, reply.read().decode(), dict(reply.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), dict(exc.headers)
    except OSError:
        return 0, "", {}


def families(text: str) -> dict[str, Any]:
    return {f.name: f for f in text_string_to_metric_families(text)}


def raw(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def start_family(corral: Corral, workdir: Path, port: int, extra: str = "") -> None:
    corral.run("start", write(workdir, f"""
monitor_interval = "0.3s"
metrics_listen = "127.0.0.1:{port}"
{extra}
[[apps]]
name = "fam"
namespace = "team"
script = "{APPS / 'family.py'}"
args = ["{workdir / 'pids'}"]
"""))


def test_metrics_of_a_running_app_parse_with_prometheus_own_parser(corral: Corral, workdir: Path) -> None:
    port = free_port()
    start_family(corral, workdir, port)
    row = corral.wait_status("fam", "online")

    def sampled() -> dict[str, Any] | None:
        status, text, _ = scrape(port)
        found = families(text) if status == 200 else {}
        return found if "corral_instance_memory_bytes" in found else None

    found = wait_until(sampled, 15, "a scrape with the instance's sample")
    status, text, headers = scrape(port)
    assert status == 200 and headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    labels = {"app": "fam", "instance": "0", "namespace": "team"}
    types = {"corral_instance_cpu_seconds": "counter", "corral_instance_memory_bytes": "gauge",
             "corral_instance_restarts": "counter", "corral_instance_up": "gauge", "corral_instance_ready": "gauge",
             "corral_instance_threads": "gauge", "corral_instance_open_fds": "gauge",
             "corral_instance_processes": "gauge", "corral_instance_start_time_seconds": "gauge"}
    for name, kind in types.items():
        fam = found[name]
        assert fam.type == kind, (name, fam.type)
        assert [s.labels for s in fam.samples] == [labels], (name, fam.samples)
        assert fam.documentation, name
    value = {name: found[name].samples[0].value for name in types}
    assert found["corral_instance_cpu_seconds"].samples[0].name == "corral_instance_cpu_seconds_total"
    assert value["corral_instance_up"] == 1 and value["corral_instance_restarts"] == 0
    assert value["corral_instance_memory_bytes"] > 1_000_000 and value["corral_instance_processes"] == 2
    assert value["corral_instance_cpu_seconds"] >= 0 and value["corral_instance_threads"] >= 2
    assert abs(value["corral_instance_start_time_seconds"] - time.time()) < 120
    for name in ("corral_log_dropped_lines", "corral_log_withheld_lines", "corral_log_dropped_bytes"):
        assert found[name].type == "counter"
        assert [(s.labels, s.value) for s in found[name].samples] == [({"app": "fam", "namespace": "team"}, 0)]
    for name in ("corral_host_cpu_ratio", "corral_host_memory_available_bytes", "corral_host_load1"):
        assert found[name].type == "gauge" and [s.labels for s in found[name].samples] == [{}]
    assert 0 <= found["corral_host_cpu_ratio"].samples[0].value <= 1
    mounts = {s.labels["mount"]: s.value for s in found["corral_filesystem_used_ratio"].samples}
    assert "/" in mounts and all(0 <= v <= 1 for v in mounts.values())
    assert found["corral_monitor_samples"].type == "counter" and found["corral_monitor_samples"].samples[0].value >= 1
    assert row["pid"]


def test_a_token_is_required_when_set(corral: Corral, workdir: Path) -> None:
    port = free_port()
    start_family(corral, workdir, port, f'metrics_token = "{TOKEN}"')
    wait_until(lambda: scrape(port, TOKEN)[0] == 200, 15, "the endpoint to answer")
    status, text, headers = scrape(port)
    assert status == 401 and "bearer token" in text and headers["WWW-Authenticate"].startswith("Bearer")
    assert scrape(port, "not-the-token-at-all")[0] == 401
    status, text, _ = scrape(port, TOKEN)
    assert status == 200 and "corral_instance_up" in families(text)


def test_bad_requests_and_slow_clients_never_block_the_daemon(corral: Corral, workdir: Path) -> None:
    port = free_port()
    start_family(corral, workdir, port)
    wait_until(lambda: scrape(port)[0] == 200, 15, "the endpoint to answer")
    slow = []
    for _ in range(3):  # connected, half a request line, then nothing
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"GET /metr")
        slow.append(s)
    try:
        began = time.monotonic()
        assert corral.ls()[0]["name"] == "fam"
        assert time.monotonic() - began < 3, "ls waited for the slow clients"
        assert raw(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").startswith(b"HTTP/1.1 404 ")
        assert raw(port, b"POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n").startswith(b"HTTP/1.1 404 ")
        assert raw(port, b"\x00\xff garbage\r\n\r\n").startswith(b"HTTP/1.1 400 ")
        assert raw(port, b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 20000 + b"\r\n\r\n").startswith(b"HTTP/1.1 431 ")
        assert scrape(port)[0] == 200  # while the slow ones still hold their connections
    finally:
        for s in slow:
            s.close()
    assert corral.row("fam")["status"] == "online"


def test_a_port_in_use_is_one_line_and_an_event(corral: Corral, workdir: Path) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        corral.run("start", write(workdir, f"""
metrics_listen = "127.0.0.1:{port}"
[[apps]]
name = "a"
cmd = ["{sys.executable}", "-c", "import time; time.sleep(600)"]
"""))
        log = Path(corral.home) / "daemon.log"
        line = wait_until(lambda: [x for x in log.read_text().splitlines() if "metrics: cannot listen" in x], 10,
                          "the daemon.log line")
        assert len(line) == 1 and f"cannot listen on 127.0.0.1:{port}: " in line[0]
        events = [e for e in corral.events() if e["kind"] == "metrics_listen_failed"]
        assert len(events) == 1 and f"127.0.0.1:{port}" in events[0]["message"]
        corral.wait_status("a", "online")
    finally:
        taken.close()
    port = free_port()  # a new address in the file: the daemon binds it
    corral.run("start", write(workdir, f'metrics_listen = "127.0.0.1:{port}"\n[[apps]]\nname = "a"\n'
                                       f'cmd = ["{sys.executable}", "-c", "import time; time.sleep(600)"]\n'))
    wait_until(lambda: scrape(port)[0] == 200, 15, "the endpoint on the new address")


def test_a_file_without_metrics_listen_closes_the_endpoint_and_one_without_settings_leaves_it(
        corral: Corral, workdir: Path) -> None:
    """The file is the truth: a file that gives daemon-wide settings replaces them all (a key it
    dropped is back at its default), a file that gives none (a second file of apps) changes nothing."""
    app = f'[[apps]]\nname = "a"\ncmd = ["{sys.executable}", "-c", "import time; time.sleep(600)"]\n'
    port = free_port()
    corral.run("start", write(workdir, f'metrics_listen = "127.0.0.1:{port}"\n' + app))
    wait_until(lambda: scrape(port)[0] == 200, 15, "the endpoint")
    other = workdir / "other.toml"
    other.write_text(f'[[apps]]\nname = "b"\ncmd = ["{sys.executable}", "-c", "import time; time.sleep(600)"]\n')
    corral.run("start", str(other))
    corral.wait_status("b", "online")
    assert scrape(port)[0] == 200  # no settings in that file: the endpoint stays
    corral.run("start", write(workdir, 'monitor_interval = "5s"\n' + app))
    wait_until(lambda: scrape(port)[0] == 0, 15, "the endpoint to close")
    settings = json.loads(corral.run("ping", "--json").stdout)["settings"]
    assert settings == {"monitor_interval": 5.0}, settings
