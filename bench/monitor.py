"""Monitoring's figures (issue 11): what sampling costs the daemon, and how soon a threshold reaches
a person.

    bench/run.sh monitor [--apps 100] [--seconds 60] [--interval 2] [--rounds 3]
    .venv/bin/python bench/monitor.py --cleanup bench/.work/monitor-state.json

1. **Sampling CPU.** A fresh daemon, APPS idle apps (``sleep``), then two windows of SECONDS each on
   the same daemon: monitoring effectively idle (``monitor_interval = "60m"``), then sampling every
   10 s (the default).  The daemon's CPU (utime + stime from /proc, children excluded) over each
   window, as % of one core.  Budget: 0.5 % with 100 apps, averaged over 60 s.
2. **Threshold -> webhook.** A webhook receiver (http.server on 127.0.0.1, started here) as the
   only sink, ``monitor_interval = INTERVAL``, and ROUNDS apps with ``thresholds = { process_memory =
   "48MB" }``.  Each round signals one app, which then touches 96 MB and notes the time; the figure is
   the time from that note to the POST arriving.  Budget: two sample intervals + 1 s (each app is its
   own alert, so the hourly dedupe never hides one).

Standard library only; every process carries the bench tag and is cleaned up as in core.py.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from core import (BENCH, RESULTS, TAG_VAR, BenchError, Clock, Corral, all_status, cleanup, exit_on_signals,
                  idle_apps, save_state)

DEFAULT_STATE = BENCH / ".work" / "monitor-state.json"
CPU_BUDGET = 0.5  # % of one core with 100 apps, sampled every 10 s
TICKS = os.sysconf("SC_CLK_TCK")

LEAKER = """\
import signal, sys, time
held = []
def grow(_signum, _frame):
    held.append(bytearray(96 * 1024 * 1024))  # zero pages are not resident: touch them
    for i in range(0, len(held[-1]), 4096):
        held[-1][i] = 1
    with open(sys.argv[1], "w") as f:
        f.write(repr(time.time()))
signal.signal(signal.SIGUSR1, grow)
while True:
    time.sleep(3600)
"""


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (fields 14, 15)


def cpu_window(pid: int, seconds: float) -> float:
    """The daemon's CPU over ``seconds`` of wall time, % of one core."""
    c0, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)  # a measurement window, not a synchronisation
    return 100.0 * (cpu_seconds(pid) - c0) / (time.monotonic() - t0)


class Receiver(BaseHTTPRequestHandler):
    posts: list[tuple[float, dict[str, Any]]] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        arrived = time.time()
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            self.posts.append((arrived, json.loads(body)))
        except ValueError:
            self.posts.append((arrived, {"text": body.decode(errors="replace")}))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        pass


def settings(interval: str, url: str | None = None, extra: str = "") -> str:
    out = [f'monitor_interval = "{interval}"']
    if url:
        out += ["[[sinks]]", 'type = "webhook"', f'url = "{url}"', 'format = "json"']
    return "\n".join(out) + "\n" + extra


def app_toml(apps: list[dict[str, Any]]) -> str:
    out = []
    for app in apps:
        out += ["[[apps]]", f"name = {json.dumps(app['name'])}", f"script = {json.dumps(app['script'])}",
                f"args = {json.dumps(app['args'])}", f"interpreter = {json.dumps(app['interpreter'])}"]
        out += app.get("extra", [])
    return "\n".join(out) + "\n"


def measure_cpu(args: argparse.Namespace, corral: Corral, work: Path, marker: str,
                log: Any) -> dict[str, float]:
    apps = idle_apps("idle", args.apps, marker)
    cfg = work / "idle.toml"
    cfg.write_text(settings("60m") + app_toml(apps))
    corral.cli("start", str(cfg), timeout=120)
    corral.wait_rows(f"{args.apps} apps online", all_status({a["name"] for a in apps}, "online"), 120)
    pid = corral.daemon_pid()
    time.sleep(3)  # let the start-up settle before the window (a measurement, not a sync)
    idle = cpu_window(pid, args.seconds)
    log(f"{args.apps} apps, monitor_interval 60m: {idle:.3f} % of one core over {args.seconds:.0f} s")
    cfg.write_text(settings("10s") + app_toml(apps))
    corral.cli("start", str(cfg), timeout=120)
    sampled = cpu_window(pid, args.seconds)
    log(f"{args.apps} apps, sampled every 10 s: {sampled:.3f} % of one core over {args.seconds:.0f} s")
    corral.cli("delete", "all", timeout=120)
    return {"idle_pct": idle, "sampled_pct": sampled}


def measure_alerts(args: argparse.Namespace, corral: Corral, work: Path, marker: str,
                   log: Any) -> list[float]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    (work / "leak.py").write_text(LEAKER)
    apps = [{"name": f"leak-{i}", "script": str(work / "leak.py"), "args": [str(work / f"grew-{i}"), marker],
             "interpreter": sys.executable, "extra": ['thresholds = { process_memory = "48MB" }']}
            for i in range(args.rounds)]
    cfg = work / "leak.toml"
    cfg.write_text(settings(f"{args.interval:g}s", url) + app_toml(apps))
    corral.cli("start", str(cfg), timeout=60)
    corral.wait_rows("the leaking apps online", all_status({a["name"] for a in apps}, "online"), 60)
    time.sleep(args.interval * 2)  # two samples below the line first (a measurement, not a sync)
    latencies = []
    try:
        for i, app in enumerate(apps):
            rows = {r["name"]: r for r in corral.rows()[1]}
            os.kill(int(rows[app["name"]]["pid"]), signal.SIGUSR1)
            deadline = time.monotonic() + 4 * args.interval + 10
            hit = None
            while hit is None and time.monotonic() < deadline:
                hit = next((t for t, body in Receiver.posts if app["name"] in json.dumps(body)), None)
                time.sleep(0.01)
            grew = work / f"grew-{i}"
            if hit is None or not grew.exists():
                raise BenchError(f"no webhook for {app['name']} within {4 * args.interval + 10:g} s")
            latencies.append(hit - float(grew.read_text()))
            log(f"{app['name']}: threshold crossed -> webhook in {latencies[-1]:.2f} s")
    finally:
        server.shutdown()
    corral.cli("delete", "all", timeout=60)
    return latencies


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--apps", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=60.0, help="length of each CPU window")
    ap.add_argument("--interval", type=float, default=2.0, help="monitor_interval of the alert rounds (s)")
    ap.add_argument("--rounds", type=int, default=3, help="threshold crossings timed")
    ap.add_argument("--state", type=Path, default=DEFAULT_STATE)
    ap.add_argument("--cleanup", type=Path, metavar="STATE")
    args = ap.parse_args()
    if args.cleanup is not None:
        if args.cleanup.exists():
            cleanup(json.loads(args.cleanup.read_text()))
            args.cleanup.unlink(missing_ok=True)
        return 0

    tag, marker = f"{os.getpid()}-{random.randrange(10**9)}", f"3600.{random.randrange(10**5, 10**6)}"
    tmp = Path(tempfile.mkdtemp(prefix="corral-monitor-"))
    home, work = tmp / "corral", tmp / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "CORRAL_HOME"}
    env.update({"CORRAL_HOME": str(home), TAG_VAR: tag})
    state = {"tag": tag, "marker": marker, "tmp": str(tmp), "corral_home": str(home),
             "env": {"CORRAL_HOME": str(home)}}
    save_state(args.state, state)
    exit_on_signals()

    def log(msg: str) -> None:
        print(f"  {msg}", file=sys.stderr, flush=True)

    corral = Corral(home, env, Clock(args.seconds * 2 + 600))
    try:
        cpu = measure_cpu(args, corral, work, marker, log)
        latencies = measure_alerts(args, corral, work, marker, log)
    except BenchError as exc:
        print(f"monitor.py: {exc}", file=sys.stderr)
        return 2
    finally:
        cleanup(state)
        args.state.unlink(missing_ok=True)
    bound = 2 * args.interval + 1
    result = {"apps": args.apps, "seconds": args.seconds, "cpu": cpu, "interval": args.interval,
              "latencies": latencies, "bound": bound, "load": os.getloadavg()}
    lines = [
        f"# Monitoring figures ({time.strftime('%Y-%m-%d %H:%M')}, load {os.getloadavg()[0]:.2f})",
        "",
        f"- Daemon CPU, {args.apps} idle apps, over {args.seconds:.0f} s: {cpu['sampled_pct']:.3f} % of one core "
        f"sampled every 10 s (budget {CPU_BUDGET} %); {cpu['idle_pct']:.3f} % with monitor_interval 60m.",
        f"- Threshold crossed -> webhook received, monitor_interval {args.interval:g} s: median "
        f"{statistics.median(latencies):.2f} s, worst {max(latencies):.2f} s of {len(latencies)} "
        f"(budget two intervals + 1 s = {bound:g} s).",
    ]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "monitor-latest.json").write_text(json.dumps(result, indent=1))
    (RESULTS / "monitor-latest.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines[2:]))
    over = cpu["sampled_pct"] > CPU_BUDGET or max(latencies) > bound
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
