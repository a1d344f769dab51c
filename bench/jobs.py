"""The job scheduler's figures (issue 12), on a real daemon in a temporary CORRAL_HOME:

* **lag**: a job with ``cron = "*/2 * * * * *"`` (``true``) for ``--seconds`` (60): how long after
  each even second it started (median, 95th percentile, max) and whether any even second was missed;
* **cpu**: ``--jobs`` (1,000) jobs, each every minute, staggered over the minute's seconds: the
  daemon's own CPU time (utime + stime, not its children's) over ``--seconds``, as % of one core;
  the same with the jobs ``enabled = false`` (declared, never due) and with none, for comparison.

    .venv/bin/python bench/jobs.py [--seconds 60] [--jobs 1000] [--only lag|cpu]

Prints a Markdown table and writes bench/results/jobs-latest.json.  The machine is shared:
report ratios from one run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = os.environ.get("CORRAL_PYTHON") or str(ROOT / ".venv" / "bin" / "python")


class Home:
    def __init__(self) -> None:
        self.root = tempfile.mkdtemp(prefix="corral-bench-jobs-", dir="/tmp")
        self.env = {**os.environ, "CORRAL_HOME": self.root}

    def run(self, *args: str) -> str:
        done = subprocess.run([PY, "-m", "corral", *args], capture_output=True, text=True, env=self.env, timeout=120,
                              check=False)
        if done.returncode != 0:
            raise SystemExit(f"corral {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def daemon_pid(self) -> int:
        with open(os.path.join(self.root, "daemon.lock")) as f:
            return int(f.read().split()[0])

    def close(self) -> None:
        subprocess.run([PY, "-m", "corral", "kill"], capture_output=True, env=self.env, timeout=120, check=False)
        shutil.rmtree(self.root, ignore_errors=True)


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def lag(seconds: float) -> dict[str, float]:
    home = Home()
    try:
        path = Path(home.root) / "lag.toml"
        path.write_text('maintenance = false\n[[jobs]]\nname = "tick"\ncmd = ["true"]\ncron = "*/2 * * * * *"\n'
                        "history = 1000\n")
        home.run("start", str(path))
        began = time.time()
        time.sleep(seconds)  # the measurement itself: the schedule runs meanwhile
        runs = json.loads(home.run("jobs", "history", "tick", "--json", "--lines", "1000"))
        starts = [r["started"] for r in runs if r["trigger"] == "cron" and r["started"] > began + 2]
        lags = [(s - (int(s) // 2) * 2) * 1000 for s in starts]
        slots = {int(s) // 2 for s in starts}
        expected = round((starts[-1] - starts[0]) / 2) + 1 if starts else 0
        return {"runs": len(starts), "missed": expected - len(slots), "median_ms": statistics.median(lags),
                "p95_ms": sorted(lags)[int(len(lags) * 0.95) - 1], "max_ms": max(lags)}
    finally:
        home.close()


def cpu(jobs: int, seconds: float, enabled: bool | None) -> float:
    home = Home()
    try:
        path = Path(home.root) / "cpu.toml"
        text = "maintenance = false\n"
        if enabled is not None:
            text += "".join(f'[[jobs]]\nname = "j{i}"\ncmd = ["true"]\ncron = "{i % 60} * * * * *"\n'
                            f"enabled = {str(enabled).lower()}\nhistory = 5\n" for i in range(jobs))
        else:
            text += '[[apps]]\nname = "idle"\ncmd = ["sleep", "3600"]\n'
        path.write_text(text)
        home.run("start", str(path))
        time.sleep(3)  # settle: the start itself is not the figure
        pid = home.daemon_pid()
        before, t0 = cpu_seconds(pid), time.monotonic()
        time.sleep(seconds)
        return 100.0 * (cpu_seconds(pid) - before) / (time.monotonic() - t0)
    finally:
        home.close()


def scheduler(jobs: int) -> float:
    """The decisions alone (``corral.jobs.schedule`` with cronsim), in this process: CPU seconds to
    schedule one minute of ``jobs`` staggered every-minute jobs, as % of one core."""
    sys.path.insert(0, str(ROOT))
    from corral.jobs.schedule import Schedule, Trigger

    schedule = Schedule()
    start = time.time()
    for i in range(jobs):
        schedule.load(f"j{i}", Trigger(cron=f"{i % 60} * * * * *"), start, None, 0.0, False)
    t0 = time.process_time()
    fired = 0
    while (due := schedule.next_due()) is not None and due[0] <= start + 60:
        for _action in schedule.fire(due[1], due[0], 0.5):
            fired += 1
            schedule.exited(due[1], True, due[0] + 0.01)
    spent = time.process_time() - t0
    assert fired == jobs, fired
    return 100.0 * spent / 60.0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--only", choices=["lag", "cpu"])
    args = parser.parse_args()
    results: dict[str, object] = {}
    if args.only in (None, "lag"):
        results["lag"] = lag(args.seconds)
    if args.only in (None, "cpu"):
        results["scheduler_percent"] = scheduler(args.jobs)
        results["cpu_percent"] = {"running": cpu(args.jobs, args.seconds, True),
                                  "declared_disabled": cpu(args.jobs, args.seconds, False),
                                  "no_jobs": cpu(args.jobs, args.seconds, None)}
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "jobs-latest.json").write_text(json.dumps(results, indent=2) + "\n")
    if "lag" in results:
        lag_ = results["lag"]
        print(f"| `*/2 * * * * *` over {args.seconds:g}s | {lag_['runs']} runs, {lag_['missed']} missed | "  # type: ignore[index]
              f"lag median {lag_['median_ms']:.1f} ms, p95 {lag_['p95_ms']:.1f} ms, max {lag_['max_ms']:.1f} ms |")  # type: ignore[index]
    if "cpu_percent" in results:
        c = results["cpu_percent"]
        print(f"| {args.jobs} jobs every minute, staggered | scheduling {results['scheduler_percent']:.2f}% of a core; "
              f"the daemon with their {args.jobs} runs a minute {c['running']:.2f}% | "  # type: ignore[index]
              f"declared, disabled {c['declared_disabled']:.2f}%; no jobs {c['no_jobs']:.2f}% |")  # type: ignore[index]
    return 0


if __name__ == "__main__":
    sys.exit(main())
