"""What `corral monit` costs while it is open: its CPU (and the daemon's) with 50 apps, in tmux.

    .venv/bin/python bench/monit.py [--seconds 60] [--budget 5] [--keep]

A fresh daemon in a temporary CORRAL_HOME runs 50 small Python apps that each print a line
every 2 s (so the selected app's log pane has lines to follow) with the default sampling
interval; the daemon's CPU is read over a quiet window first.  Then `corral monit` opens in a
160x50 terminal of a tmux server of our own; once its screen shows the 50 apps it settles for
5 s, and its CPU (utime + stime of /proc/PID/stat, all its threads) is read over SECONDS of
wall time, with the daemon's over the same window.  Results: bench/results/monit-latest.{json,md};
exit status 1 when monit is above BUDGET percent of one core.  Always cleans up (tmux server,
`corral kill`, the home).  Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Callable

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
TICKS = os.sysconf("SC_CLK_TCK")
APP = "import time\nn = 0\nwhile True:\n    n += 1\n    print('line', n, flush=True)\n    time.sleep(2)\n"


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def wait(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise SystemExit(f"monit bench: timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.1)


def window(pids: dict[str, int], seconds: float) -> dict[str, float]:
    """Percent of one core each process used over SECONDS of wall time."""
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    t0 = time.monotonic()
    time.sleep(seconds)
    wall = time.monotonic() - t0
    return {name: round((cpu_seconds(pid) - before[name]) / wall * 100, 2) for name, pid in pids.items()}


def corral(env: dict[str, str], *args: str) -> str:
    return subprocess.run([sys.executable, "-m", "corral", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=True).stdout


def run(args: argparse.Namespace, home: Path, tmux: list[str]) -> dict[str, Any]:
    env = {**os.environ, "CORRAL_HOME": str(home)}
    (home / "app.py").write_text(APP)
    apps = "".join(f'\n[[apps]]\nname = "app-{i:02d}"\nscript = "{home / "app.py"}"\n' for i in range(50))
    (home / "corral.toml").write_text(apps)
    corral(env, "start", str(home / "corral.toml"))
    wait(lambda: sum(r["status"] == "online" for r in json.loads(corral(env, "ls", "--json"))) == 50, 60,
         "50 apps online")
    daemon = int((home / "daemon.lock").read_text().split()[-1])
    quiet = window({"daemon": daemon}, args.quiet)
    opened = time.monotonic()
    subprocess.run([*tmux, "new-session", "-d", "-x", "160", "-y", "50",
                    f"exec env CORRAL_HOME={home} {sys.executable} -m corral monit"], cwd=ROOT, check=True, timeout=30)
    pid = int(subprocess.run([*tmux, "display", "-p", "#{pane_pid}"], capture_output=True, text=True,
                             check=True, timeout=30).stdout)

    def screen() -> str:
        return subprocess.run([*tmux, "capture-pane", "-p"], capture_output=True, text=True, timeout=30).stdout

    wait(lambda: "50 app(s), 50 instance(s)" in screen(), 60, "monit to show the 50 apps")
    shown = time.monotonic() - opened
    startup_cpu = cpu_seconds(pid)
    time.sleep(args.settle)
    busy = window({"monit": pid, "daemon": daemon}, args.seconds)
    return {"apps": 50, "seconds": args.seconds, "monit_cpu_percent": busy["monit"],
            "daemon_cpu_percent_with_monit": busy["daemon"], "daemon_cpu_percent_quiet": quiet["daemon"],
            "monit_startup_seconds": round(shown, 2), "monit_startup_cpu_seconds": round(startup_cpu, 2),
            "monit_rss_mib": round(rss_mib(pid), 1), "budget_percent": args.budget,
            "load_average": os.getloadavg(), "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}


def markdown(r: dict[str, Any]) -> str:
    return "\n".join([
        "# `corral monit` with 50 apps (bench/monit.py)", "",
        f"{r['when']}, load average {' '.join(f'{x:.2f}' for x in r['load_average'])}", "",
        "| figure | value |", "|---|---|",
        f"| monit CPU while open ({r['seconds']:g} s window) | {r['monit_cpu_percent']:.2f} % of one core "
        f"(budget {r['budget_percent']:g} %) |",
        f"| daemon CPU, same window | {r['daemon_cpu_percent_with_monit']:.2f} % |",
        f"| daemon CPU before monit opened | {r['daemon_cpu_percent_quiet']:.2f} % |",
        f"| monit start until the 50 apps show | {r['monit_startup_seconds']:.2f} s "
        f"({r['monit_startup_cpu_seconds']:.2f} s of CPU) |",
        f"| monit RSS | {r['monit_rss_mib']:.1f} MiB |", ""])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0, help="the measured window with monit open")
    ap.add_argument("--quiet", type=float, default=20.0, help="the daemon's window before monit opens")
    ap.add_argument("--settle", type=float, default=5.0, help="seconds after the first full screen")
    ap.add_argument("--budget", type=float, default=5.0, help="percent of one core allowed")
    ap.add_argument("--keep", action="store_true", help="keep the temporary home")
    args = ap.parse_args()
    if shutil.which("tmux") is None:
        print("monit bench: tmux is not installed", file=sys.stderr)
        return 2
    home = Path(tempfile.mkdtemp(prefix="corral-bench-monit-", dir="/tmp"))
    tmux = ["tmux", "-L", f"corral-bench-{uuid.uuid4().hex[:8]}"]
    try:
        result = run(args, home, tmux)
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True, timeout=30)
        subprocess.run([sys.executable, "-m", "corral", "kill"], env={**os.environ, "CORRAL_HOME": str(home)},
                       capture_output=True, timeout=120)
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)
    out = BENCH / "results"
    (out / "monit-latest.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "monit-latest.md").write_text(markdown(result))
    print(markdown(result))
    return 1 if result["monit_cpu_percent"] > args.budget else 0


if __name__ == "__main__":
    sys.exit(main())
