"""Timed daemon kills, the long run: SIGKILL the daemon when the k-th new process appears during
``start`` of N apps, ``scale`` 1 -> N and a rolling ``reload`` of N instances, for every k from 1
to N, several rounds, then count what the next daemon runs.

    .venv/bin/python bench/timed_kills.py                     # N = 8, 3 rounds, both trackings
    .venv/bin/python bench/timed_kills.py --n 10 --rounds 5
    .venv/bin/python bench/timed_kills.py --against /path/to/other/corral   # another corral (its
                                                                  # parent dir goes on PYTHONPATH)

Tracking "cgroup" is the daemon's default where it may create cgroups (root); "marker" turns them
off (``CORRAL_CGROUPS=0``).  Results: ``bench/results/timed-kills-latest.md`` and ``.json``.
A trial counts as a duplicate when two live processes are the same instance, as an orphan when a
live process of the home is not listed by the new daemon.  Every home is cleaned up (``corral
kill``, then SIGKILL for anything still carrying it in its environment).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.timedkills import ACTIONS, Trial, new_processes, one  # noqa: E402


def run(n: int, rounds: int, trackings: list[str], env: dict[str, str]) -> list[tuple[str, Trial]]:
    """(tracking asked for, trial) of every trial; the trial says what the daemon used."""
    trials = []
    for tracking in trackings:
        tenv = {**env, **({"CORRAL_CGROUPS": "0"} if tracking == "marker" else {})}
        for action in ACTIONS:
            for _ in range(rounds):
                for k in range(1, new_processes(action, n) + 1):
                    trial = one(action, n, k, env=tenv)
                    trial.error = trial.error[:200]
                    trials.append((tracking, trial))
                    mark = "ok" if trial.ok else f"BAD {trial.duplicates} {trial.orphans} {trial.missing} {trial.error} {trial.seen}"
                    print(f"{tracking:6} ({trial.tracking}) {action:6} k={k:<2} killed={trial.killed!s:5} {mark}",
                          flush=True)
    return trials


def table(trials: list[tuple[str, Trial]], trackings: list[str]) -> str:
    lines = ["| tracking (the daemon's own word) | action | kills | with duplicates | with orphans | other failures |",
             "|---|---|---|---|---|---|"]
    for tracking in trackings:
        for action in ACTIONS:
            mine = [t for asked, t in trials if asked == tracking and t.action == action]
            used = ", ".join(sorted({t.tracking for t in mine}))
            killed = [t for t in mine if t.killed]
            dup = sum(1 for t in killed if t.duplicates)
            orphans = sum(1 for t in killed if t.orphans)
            other = sum(1 for t in mine if t.error or t.missing or not t.killed)
            lines.append(f"| {tracking} ({used}) | {action} | {len(killed)} | {dup} | {orphans} | {other} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=8, help="apps (start), instances (scale, reload)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tracking", default="cgroup,marker", help="cgroup,marker (default: both)")
    parser.add_argument("--against", help="a corral package directory to measure instead of this one")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "timed-kills-latest"))
    args = parser.parse_args()
    env = {"PYTHONPATH": str(Path(args.against).resolve().parent)} if args.against else {}
    trackings = args.tracking.split(",")
    started = time.monotonic()
    trials = run(args.n, args.rounds, trackings, env)
    text = table(trials, trackings)
    took = time.monotonic() - started
    print(text)
    what = f"corral at {args.against}" if args.against else "this corral"
    Path(args.out + ".md").write_text(
        f"# timed daemon kills ({what}), N = {args.n}, {args.rounds} rounds, k = 1..{args.n} "
        f"(1..{args.n - 1} for scale), {took:.0f} s\n\n"
        f"{text}\n")
    Path(args.out + ".json").write_text(json.dumps(
        [{**t.__dict__, "asked": asked, "ok": t.ok} for asked, t in trials], indent=1) + "\n")
    bad = [t for _, t in trials if not t.ok]
    return 1 if bad and not args.against else 0


if __name__ == "__main__":
    os.umask(0o022)
    sys.exit(main())
