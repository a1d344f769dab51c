"""The daemon's memory budget on its own: bench/run.sh's corral RSS figures, without PM2, in ~15 s.

    bench/run.sh rss [--budget 22] [--rounds 3] [--keep]
    .venv/bin/python bench/rss.py --cleanup bench/.work/rss-state.json   # kill what a run left

The same steps and code as core.py (bench/README.md, "daemon RSS"): a fresh daemon and its RSS
1 s after the first ping (0 apps); 10 idle apps listed 22 times, then deleted; then ROUNDS rounds
of: start 50 idle apps, wait until all are online, RSS 1 s later, list, read 1000 events, stop
all, delete all.  Exits with status 1 when the worst round is above the budget (MiB, VmRSS
kB / 1024), so a change that blows it is noticed.  Standard library only.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from core import (BENCH, ROOT, TAG_VAR, BenchError, Clock, Corral, cleanup, exit_on_signals, idle_apps, measure_ls,
                  rss_kib, save_state, tool_round)

DEFAULT_STATE = BENCH / ".work" / "rss-state.json"
BUDGET_MIB = 22.0  # bench/README.md: corral <= 22 MiB with 50 apps and monitoring on (20 before it)


def status_kib(pid: int) -> dict[str, int]:
    with open(f"/proc/{pid}/status") as f:
        return {k: int(v.split()[0]) for k, v in (line.split(":", 1) for line in f) if k in ("RssAnon", "RssFile")}


def bytecode_note() -> str:
    """Whether the daemon (python -OO) could load .pyc files: without them it compiles its modules."""
    cached = glob.glob(str(ROOT / "corral" / "daemon" / "__pycache__" / "main.*.opt-2.pyc"))
    return (f"PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', '')!s}, "
            f"{'.opt-2.pyc files present' if cached else 'no .opt-2.pyc files'} in corral/")


def measure(args: argparse.Namespace, corral: Corral, work: Path, marker: str) -> dict[str, Any]:
    def log(msg: str) -> None:
        print(f"  {msg}", file=sys.stderr, flush=True)

    corral.cli("ping")
    pid = corral.daemon_pid()
    time.sleep(args.settle)
    out: dict[str, Any] = {"rss_0": rss_kib(pid), "split_0": status_kib(pid)}
    measure_ls([corral], work, marker, 20, 2, log)
    apps = idle_apps("idle", 50, marker)
    cfg = corral.write_config(work / "idle50", apps)
    names = {a["name"] for a in apps}
    out["rounds"] = []
    for r in range(args.rounds):
        out["rounds"].append(tool_round(corral, cfg, names, marker, args.settle)["rss_kib_50"])
        log(f"round {r + 1}/{args.rounds}: {out['rounds'][-1] / 1024:.2f} MiB with 50 apps")
    out["rss_end"] = rss_kib(pid)
    if corral.daemon_pid() != pid:
        raise BenchError("the daemon changed pid during the run")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", type=float, default=BUDGET_MIB, help="MiB allowed with 50 apps (worst round)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--settle", type=float, default=1.0, help="seconds before reading RSS")
    ap.add_argument("--max-seconds", type=float, default=120.0, help="deadline of the whole run")
    ap.add_argument("--state", type=Path, default=DEFAULT_STATE, help="where to note what to clean up")
    ap.add_argument("--keep", action="store_true", help="keep the temporary home (logs) for a look")
    ap.add_argument("--cleanup", type=Path, metavar="STATE", help="only clean up after the run noted in STATE")
    args = ap.parse_args()
    if args.cleanup is not None:
        if args.cleanup.exists():
            cleanup(json.loads(args.cleanup.read_text()))
            args.cleanup.unlink(missing_ok=True)
        return 0

    tag = f"{os.getpid()}-{random.randrange(10**9)}"
    marker = f"3600.{random.randrange(10**5, 10**6)}"
    tmp = Path(tempfile.mkdtemp(prefix="corral-rss-"))
    home, work = tmp / "corral", tmp / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "CORRAL_HOME"}
    env.update({"CORRAL_HOME": str(home), TAG_VAR: tag})
    state = {"tag": tag, "marker": marker, "tmp": str(tmp), "corral_home": str(home),
             "env": {"CORRAL_HOME": str(home)}, "keep": args.keep}
    save_state(args.state, state)

    exit_on_signals()
    try:
        m = measure(args, Corral(home, env, Clock(args.max_seconds)), work, marker)
    except BenchError as exc:
        print(f"rss.py: {exc}", file=sys.stderr)
        return 2
    finally:
        cleanup(state)
        args.state.unlink(missing_ok=True)
    worst = max(m["rounds"]) / 1024
    split = m["split_0"]
    print(f"daemon RSS, 0 apps: {m['rss_0'] / 1024:.2f} MiB (anonymous {split['RssAnon'] / 1024:.2f}, "
          f"files {split['RssFile'] / 1024:.2f})")
    print(f"daemon RSS, 50 apps: {' / '.join(f'{k / 1024:.2f}' for k in m['rounds'])} MiB "
          f"(max {worst:.2f}; budget {args.budget:.2f})")
    print(f"daemon RSS at the end, 0 apps: {m['rss_end'] / 1024:.2f} MiB; {bytecode_note()}")
    if worst > args.budget:
        print(f"rss.py: over budget: {worst:.2f} MiB > {args.budget:.2f} MiB with 50 apps", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
