"""The web process's figures (issue 15): ``GET /api/apps`` with 50 apps (p50/p99 over keep-alive
requests), the web process's RSS, and the daemon's RSS with and without a connected dashboard
(an SSE stream with metrics every 2 s and the apps polled every 5 s, as the page does).

    .venv/bin/python bench/web.py [--requests 1000] [--dashboard 20]

Standard library only; a temporary CORRAL_HOME, killed and removed at the end.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv").exists() else sys.executable
BUDGET_P99_MS, BUDGET_WEB_MIB = 20.0, 40.0


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def cli(env: dict[str, str], *args: str) -> str:
    return subprocess.run([PY, "-m", "corral", *args], env=env, check=True, capture_output=True, text=True,
                          timeout=120).stdout


def wait(pred, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.1)
    raise SystemExit(f"bench/web.py: timed out waiting for {what}")


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--requests", type=int, default=1000)
    p.add_argument("--dashboard", type=float, default=20.0, help="seconds with a dashboard connected")
    args = p.parse_args()
    home = tempfile.mkdtemp(prefix="corral-benchweb-")
    env = {**os.environ, "CORRAL_HOME": home}
    try:
        return run(args, home, env)
    finally:
        subprocess.run([PY, "-m", "corral", "kill"], env=env, capture_output=True, timeout=120)
        shutil.rmtree(home, ignore_errors=True)


def run(args: argparse.Namespace, home: str, env: dict[str, str]) -> int:
    lines = ['monitor_interval = "2s"']
    for i in range(50):
        lines += ["[[apps]]", f'name = "idle-{i:02d}"', 'script = "/bin/sleep"', 'args = ["100000"]',
                  'interpreter = "none"']
    cfg = Path(home) / "bench.toml"
    cfg.write_text("\n".join(lines) + "\n")
    cli(env, "start", str(cfg))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cli(env, "web", "--listen", f"127.0.0.1:{port}")
    token = cli(env, "web", "token").strip()
    rows = wait(lambda: [r for r in json.loads(cli(env, "ls", "--json")) if r["status"] == "online"], 30, "apps")
    web_pid = next(r["pid"] for r in json.loads(cli(env, "ls", "--json")) if r["name"] == "corral-web")
    daemon_pid = int(open(os.path.join(home, "daemon.lock")).read().split()[-1])
    wait(lambda: len([r for r in json.loads(cli(env, "ls", "--json")) if r["status"] == "online"]) == 51, 60, "51 online")
    headers = {"Authorization": f"Bearer {token}"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    wait(lambda: _ok(conn, headers), 30, "the API")
    times = []
    cpu_before = _cpu_ms(web_pid), _cpu_ms(daemon_pid)
    for _ in range(args.requests):
        t = time.perf_counter()
        conn.request("GET", "/api/apps", headers=headers)
        r = conn.getresponse()
        body = r.read()
        times.append((time.perf_counter() - t) * 1000)
        assert r.status == 200 and len(json.loads(body)) == 51
    cpu_web = (_cpu_ms(web_pid) - cpu_before[0]) / args.requests
    cpu_daemon = (_cpu_ms(daemon_pid) - cpu_before[1]) / args.requests
    times.sort()
    p50, p99 = times[len(times) // 2], times[int(len(times) * 0.99) - 1]
    direct = _direct_ls(home, args.requests)
    time.sleep(2)
    daemon_before = rss_kib(daemon_pid)
    stop = threading.Event()
    threading.Thread(target=_dashboard, args=(port, headers, stop), daemon=True).start()
    time.sleep(args.dashboard)
    daemon_during, web_rss = rss_kib(daemon_pid), rss_kib(web_pid)
    stop.set()
    out = {"apps": len(rows), "requests": args.requests, "p50_ms": round(p50, 2), "p99_ms": round(p99, 2),
           "web_cpu_ms_per_request": round(cpu_web, 3), "daemon_cpu_ms_per_request": round(cpu_daemon, 3),
           "daemon_socket_ls_p50_ms": round(direct[len(direct) // 2], 2),
           "daemon_socket_ls_p99_ms": round(direct[int(len(direct) * 0.99) - 1], 2),
           "web_rss_mib": round(web_rss / 1024, 1), "daemon_rss_mib_before": round(daemon_before / 1024, 2),
           "daemon_rss_mib_with_dashboard": round(daemon_during / 1024, 2)}
    print(json.dumps(out, indent=1))
    ok = p99 < BUDGET_P99_MS and web_rss / 1024 <= BUDGET_WEB_MIB
    print(f"bench/web.py: p99 {p99:.2f} ms (budget {BUDGET_P99_MS:g}; the daemon's own socket: p99 "
          f"{direct[int(len(direct) * 0.99) - 1]:.2f} ms), web RSS {web_rss / 1024:.1f} MiB "
          f"(budget {BUDGET_WEB_MIB:g}), daemon {daemon_before / 1024:.2f} -> {daemon_during / 1024:.2f} MiB "
          f"with a dashboard: {'ok' if ok else 'OVER BUDGET'}", file=sys.stderr)
    return 0 if ok else 1


def _cpu_ms(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def _direct_ls(home: str, n: int) -> list[float]:
    """The same list straight from the control socket (what the API adds is the difference)."""
    times = []
    for _ in range(n):
        t = time.perf_counter()
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(os.path.join(home, "corral.sock"))
            s.sendall(b'{"v":1,"id":1,"op":"ls","args":{}}\n')
            data = b""
            while not data.endswith(b"\n"):
                data += s.recv(1 << 20)
        times.append((time.perf_counter() - t) * 1000)
    return sorted(times)


def _ok(conn: http.client.HTTPConnection, headers: dict[str, str]) -> bool:
    try:
        conn.request("GET", "/api/ping", headers=headers)
        return conn.getresponse().read() != b""
    except OSError:
        conn.close()
        return False


def _dashboard(port: int, headers: dict[str, str], stop: threading.Event) -> None:
    """What an open dashboard asks: the stream (events + metrics every 2 s), the apps every 5 s."""
    stream = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    stream.request("GET", "/api/stream?metrics=2", headers=headers)
    response = stream.getresponse()
    poll = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    last = 0.0
    while not stop.is_set():
        response.fp.readline()
        if time.monotonic() - last > 5:
            poll.request("GET", "/api/apps", headers=headers)
            poll.getresponse().read()
            last = time.monotonic()
    stream.close()


if __name__ == "__main__":
    raise SystemExit(main())
