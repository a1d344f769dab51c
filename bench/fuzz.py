#!/usr/bin/env python3
"""The long run of corral's three fuzzers (issue 8): the control socket, config files, CLI argv.

    bench/fuzz.py                  # 2000 cases each
    bench/fuzz.py --cases 10000    # more
    bench/fuzz.py --only control   # one of: control, config, argv

Runs the suite's fuzz tests (tests/integration/test_fuzz_control.py, tests/unit/test_fuzz_config.py,
tests/integration/test_fuzz_argv.py) with ``CORRAL_FUZZ_CASES=N``, each against its own daemon and
CORRAL_HOME (torn down by the test fixtures), and collects what each one saw: cases tried,
tracebacks, hangs, daemon deaths and wrong answers, with the first examples of each.  Writes
bench/results/fuzz-latest.{md,json} and the table in bench/README.md.  Exit status 1 when any
fuzzer found something.  Standard library only; needs the test venv (scripts/setup test).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
FUZZERS = {
    "control": "tests/integration/test_fuzz_control.py::test_control_socket_fuzzer",
    "config": "tests/unit/test_fuzz_config.py::test_config_fuzzer",
    "argv": "tests/integration/test_fuzz_argv.py::test_cli_argv_fuzzer",
}
BEGIN, END = "<!-- fuzz-results:begin -->", "<!-- fuzz-results:end -->"


def run(cases: int, only: list[str], python: str, jobs: int) -> tuple[list[dict[str, object]], float, int]:
    with tempfile.NamedTemporaryFile("r", suffix=".jsonl", delete=False) as report:
        path = report.name
    env = {**os.environ, "CORRAL_FUZZ_CASES": str(cases), "CORRAL_FUZZ_REPORT": path}
    command = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "timeout=0",
               *(["-n", str(jobs)] if jobs > 1 else []), *(FUZZERS[name] for name in only)]
    started = time.monotonic()
    status = subprocess.run(command, cwd=ROOT, env=env).returncode
    elapsed = time.monotonic() - started
    try:
        rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    finally:
        os.unlink(path)
    return rows, elapsed, status


def table(rows: list[dict[str, object]], cases: int, elapsed: float) -> str:
    head = ("| fuzzer | cases | tracebacks | hangs | daemon deaths | wrong | outcomes |\n"
            "|---|---|---|---|---|---|---|\n")
    body = "".join(
        f"| {r['fuzzer']} | {r['cases']} | {r['tracebacks']} | {r['hangs']} | {r['deaths']} | {r['wrong']} | "
        + ", ".join(f"{k} {v}" for k, v in sorted(dict(r.get("seen") or {}).items())) + " |\n" for r in rows)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    return (head + body + f"\n`bench/fuzz.py --cases {cases}` at {commit}, {time.strftime('%Y-%m-%d')}, "
            f"{elapsed:.0f} s on this machine ({os.cpu_count()} CPUs).\n")


def write(rows: list[dict[str, object]], text: str) -> None:
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    (results / "fuzz-latest.json").write_text(json.dumps(rows, indent=1) + "\n")
    (results / "fuzz-latest.md").write_text("# Fuzzers: latest run\n\n" + text)
    readme = HERE / "README.md"
    current = readme.read_text()
    if BEGIN in current and END in current:
        before, rest = current.split(BEGIN, 1)
        readme.write_text(before + BEGIN + "\n" + text + END + rest.split(END, 1)[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=2000, help="cases per fuzzer (default 2000)")
    parser.add_argument("--only", action="append", choices=sorted(FUZZERS), help="run only this fuzzer (repeatable)")
    parser.add_argument("--jobs", type=int, default=2, help="fuzzers run at once (default 2)")
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    args = parser.parse_args()
    python = os.environ.get("CORRAL_PYTHON") or str(ROOT / ".venv" / "bin" / "python")
    only = args.only or list(FUZZERS)
    rows, elapsed, status = run(args.cases, only, python, args.jobs)
    text = table(rows, args.cases, elapsed)
    print(text)
    for row in rows:
        for kind, examples in dict(row.get("examples") or {}).items():
            print(f"{row['fuzzer']}: {kind}, e.g. {examples}", file=sys.stderr)
    if not args.no_write and len(rows) == len(only):
        write(rows, text)
    return 0 if status == 0 and len(rows) == len(only) else 1


if __name__ == "__main__":
    sys.exit(main())
