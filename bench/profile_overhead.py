"""What ``corral profile cpu`` costs the app it profiles: throughput of a CPU-bound Python app
while py-spy samples it at 100 Hz, against the same app unprofiled (spec P1, issue 14: at most 5 %).

    .venv/bin/python bench/profile_overhead.py [--window 10] [--rounds 3] [--budget 5]

A fresh daemon in a temporary CORRAL_HOME runs ``counter.py`` (below): it counts loop iterations
of a small pure-Python workload and writes the count to a file every 0.2 s.  Each round measures
iterations per second over WINDOW seconds without a profiler, then over WINDOW seconds while
``corral profile cpu --duration WINDOW`` runs (py-spy record --rate 100 --nonblocking
--subprocesses); the windows alternate so a drift of the shared machine hits both.  Prints the
median loss and the rounds; exits 1 above the budget.  Results: bench/results/profile-latest.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
PYTHON = os.environ.get("CORRAL_PYTHON") or sys.executable

COUNTER = """
import os, sys, time
path = sys.argv[1]
n = 0
last = time.monotonic()
def work():
    return sum(i * i for i in range(200))
while True:
    work()
    n += 1
    now = time.monotonic()
    if now - last >= 0.2:
        with open(path + ".tmp", "w") as f:
            f.write(f"{now} {n}")
        os.replace(path + ".tmp", path)
        last = now
"""


def read(path: Path) -> tuple[float, int]:
    while True:
        try:
            t, n = path.read_text().split()
            return float(t), int(n)
        except (OSError, ValueError):
            time.sleep(0.01)


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rate(path: Path, pid: int, seconds: float) -> tuple[float, float]:
    """(iterations per wall second, iterations per CPU second of the app) over SECONDS."""
    t0, n0 = read(path)
    c0 = cpu_seconds(pid)
    time.sleep(seconds)  # the measuring window itself: the app's count over it is the figure
    t1, n1 = read(path)
    c1 = cpu_seconds(pid)
    return (n1 - n0) / (t1 - t0), (n1 - n0) / max(c1 - c0, 1e-9)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--window", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--budget", type=float, default=5.0, help="percent of throughput the profile may cost")
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="corral-bench-profile-")
    os.chmod(home, 0o700)
    env = {**os.environ, "CORRAL_HOME": home}
    work = Path(home) / "counter.py"
    work.write_text(COUNTER)
    count = Path(home) / "count"

    def corral(*argv: str) -> str:
        return subprocess.run([PYTHON, "-m", "corral", *argv], env=env, capture_output=True, text=True,
                              check=True, timeout=args.window + 120).stdout

    rounds = []
    try:
        corral("start", str(work), "--name", "counter", "--interpreter", PYTHON, "--", str(count))
        pid = next(r["pid"] for r in json.loads(corral("jlist")) if r["name"] == "counter")
        read(count)
        rate(count, pid, 2.0)  # warm up
        for _ in range(args.rounds):
            before = rate(count, pid, args.window)
            runner = threading.Thread(target=corral, args=("profile", "cpu", "counter", "--duration",
                                                           f"{int(args.window) + 2}s"))
            runner.start()
            time.sleep(1.5)  # py-spy attached and sampling (it starts within ~0.5 s)
            profiled = rate(count, pid, args.window)
            runner.join()
            after = rate(count, pid, args.window)
            plain = [(b + a) / 2 for b, a in zip(before, after)]  # the windows either side: a drift cancels
            loss = [100.0 * (p - q) / p for p, q in zip(plain, profiled)]
            rounds.append({"plain_per_s": round(plain[0]), "profiled_per_s": round(profiled[0]),
                           "loss_percent": round(loss[0], 2), "plain_per_cpu_s": round(plain[1]),
                           "profiled_per_cpu_s": round(profiled[1]), "cpu_loss_percent": round(loss[1], 2)})
            print(f"round: {plain[0]:,.0f}/s unprofiled, {profiled[0]:,.0f}/s profiled at 100 Hz: {loss[0]:+.2f} % "
                  f"(per CPU second of the app: {loss[1]:+.2f} %)", file=sys.stderr)
    finally:
        subprocess.run([PYTHON, "-m", "corral", "kill"], env=env, capture_output=True, timeout=60)
    median = statistics.median(r["loss_percent"] for r in rounds)
    cpu_median = statistics.median(r["cpu_loss_percent"] for r in rounds)
    result = {"window_s": args.window, "rate_hz": 100, "rounds": rounds, "median_loss_percent": median,
              "median_cpu_loss_percent": cpu_median,
              "budget_percent": args.budget, "cpus": os.cpu_count()}
    (BENCH / "results").mkdir(exist_ok=True)
    (BENCH / "results" / "profile-latest.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"profile cpu overhead: median {median:+.2f} % throughput lost (per CPU second of the app "
          f"{cpu_median:+.2f} %; budget {args.budget:g} %)")
    return 0 if median <= args.budget else 1


if __name__ == "__main__":
    sys.exit(main())
