"""The redactor on the corpus (bench/corpus.py): MB/s per kind of line, and 0 secrets missed.

Run: .venv/bin/python bench/redact_corpus.py [--lines 40000] [--chunk 1048576] [--rounds 5]
                                               [--kinds json,access] [--out bench/results]

For each kind: ``--lines`` lines cut into chunks of whole lines of at most ``--chunk`` bytes
(the daemon reads up to 1 MiB from a pipe), then

* **check**: every line through the fast path (``Redactor.redact_bytes`` on the chunks) and
  through the reference (the same rules applied to each line with no pre-filter and no shortcut,
  ``_redact_line_slow(line, reference=True)``); ``secret lines`` = lines the reference changes,
  ``missed`` = lines where the two differ (must be 0);
* **speed**: the best of ``--rounds`` passes of ``redact_bytes`` over all the chunks (MB/s, lines
  per second), and the same over the kind's clean lines only (the lines the reference leaves
  as they are), which is what the goal (at least 500 MB/s) is about.

It runs with the daemon's malloc settings (``corral.control.client.DAEMON_MALLOC``: large copies are
fresh mappings, page faults included), unless ``--own-malloc``.

Results: ``--out``/redact-latest.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

import corpus  # noqa: E402
from corral.app.redact import Redactor, default_redactor  # noqa: E402
from corral.control.client import DAEMON_MALLOC  # noqa: E402

GOAL_MB_S = 500.0


def chunks_of(lines: list[bytes], size: int) -> list[bytes]:
    out: list[bytes] = []
    cur: list[bytes] = []
    used = 0
    for line in lines:
        if cur and used + len(line) > size:
            out.append(b"".join(cur))
            cur, used = [], 0
        cur.append(line)
        used += len(line)
    if cur:
        out.append(b"".join(cur))
    return out


def reference(redactor: Redactor, line: bytes) -> bytes:
    text = line.decode("utf-8", "surrogateescape")
    return redactor._redact_line_slow(text, reference=True).encode("utf-8", "surrogateescape")  # noqa: SLF001


def check(redactor: Redactor, lines: list[bytes], chunks: list[bytes]) -> dict[str, Any]:
    fast = b"".join(redactor.redact_bytes(c) for c in chunks).splitlines(keepends=True)
    ref = [reference(redactor, line) for line in lines]
    secret = [i for i, (a, b) in enumerate(zip(lines, ref)) if a != b]
    missed = [i for i, (a, b) in enumerate(zip(fast, ref)) if a != b]
    if len(fast) != len(ref):
        missed.append(-1)
    return {"secret_lines": len(secret), "missed": len(missed),
            "missed_examples": [(lines[i].decode(errors="replace"), fast[i].decode(errors="replace"),
                                 ref[i].decode(errors="replace")) for i in missed[:3] if i >= 0],
            "clean": [line for line, r in zip(lines, ref) if line == r]}


def speed(redactor: Redactor, chunks: list[bytes], rounds: int, other: Any = None) -> tuple[float, float]:
    """Best seconds for one pass of redact_bytes over ``chunks`` (and of ``other``'s, the passes
    interleaved so that a change of load hits both alike; nan without ``other``): CPU seconds of
    this process (``time.process_time``), so that the time other processes of a shared machine take
    the CPU away is not counted (it still slows the caches)."""
    best = {0: float("inf"), 1: float("inf")}
    pairs = [(0, redactor.redact_bytes)] + ([(1, other.redact_bytes)] if other is not None else [])
    for _ in range(rounds):
        for key, redact in pairs:
            start = time.process_time()
            for c in chunks:
                redact(c)
            best[key] = min(best[key], time.process_time() - start)
    return best[0], best[1] if other is not None else float("nan")


BASE_MODULES = ("_secretnames", "_prefilter", "redact")  # the redactor and what it imports of corral


def base_redactor(tree: str) -> Any:
    """The default redactor of another corral tree (e.g. main, from ``git archive``), for a
    before/after on the same chunks: its ``corral/app/redact.py`` with that tree's pre-filter and
    names (loaded under their own names for the time of the import, then this tree's are put back)."""
    import importlib.util

    saved = {name: sys.modules.get(f"corral.app.{name}") for name in BASE_MODULES}
    try:
        for name in BASE_MODULES:
            spec = importlib.util.spec_from_file_location(f"corral.app.{name}", Path(tree) / "corral" / "app" / f"{name}.py")
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[f"corral.app.{name}"] = module
            spec.loader.exec_module(module)
        return module.default_redactor()
    finally:
        for name, old in saved.items():
            if old is None:
                sys.modules.pop(f"corral.app.{name}", None)
            else:
                sys.modules[f"corral.app.{name}"] = old


def run_kind(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    redactor = default_redactor()
    lines = corpus.lines(kind, args.lines)
    chunks = chunks_of(lines, args.chunk)
    checked = check(redactor, lines, chunks)
    clean = checked.pop("clean")
    total = sum(map(len, lines))
    before = base_redactor(args.base) if args.base else None
    all_s, before_s = speed(redactor, chunks, args.rounds, before)
    clean_chunks = chunks_of(clean, args.chunk)
    clean_bytes = sum(map(len, clean))
    clean_s, before_clean_s = speed(redactor, clean_chunks, args.rounds, before) if clean else (float("nan"),) * 2
    if before is not None:
        checked["before_mb_s"] = total / before_s / 1e6
        checked["before_clean_mb_s"] = clean_bytes / before_clean_s / 1e6
    return {"kind": kind, "lines": len(lines), "bytes": total, "line_bytes": total / len(lines), **checked,
            "mb_s": total / all_s / 1e6, "lines_s": len(lines) / all_s,
            "clean_lines": len(clean), "clean_mb_s": clean_bytes / clean_s / 1e6}


def markdown(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    out = [f"Redactor (`redact_bytes`, chunks of {meta['chunk']:,} bytes), {meta['lines']:,} lines per kind, "
           f"best of {meta['rounds']} passes. Goal: ≥ {GOAL_MB_S:.0f} MB/s on clean lines, 0 missed.", "",
           "| kind | bytes/line | lines with secrets | missed | MB/s, clean lines | MB/s, all lines | lines/s, all |"
           + (" before (--base): MB/s clean / all |" if meta.get("base") else ""),
           "|---|---|---|---|---|---|---|" + ("---|" if meta.get("base") else "")]
    for r in rows:
        before = f" {r['before_clean_mb_s']:,.0f} / {r['before_mb_s']:,.0f} |" if meta.get("base") else ""
        out.append(f"| {r['kind']} | {r['line_bytes']:.0f} | {r['secret_lines']:,} | {r['missed']} "
                   f"| {r['clean_mb_s']:,.0f} | {r['mb_s']:,.0f} | {r['lines_s'] / 1e6:.2f} M |{before}")
    out += ["", f"Machine: {meta['cpus']} CPU(s), Python {meta['python']}; load average {meta['load'][0]:.2f} "
            f"before; corral {meta['git']} ({meta['date']})."]
    return "\n".join(out) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=40_000)
    ap.add_argument("--chunk", type=int, default=1 << 20)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--kinds", default=",".join(corpus.KINDS))
    ap.add_argument("--base", help="also time another corral tree's redactor (e.g. main from git archive)")
    ap.add_argument("--out", type=Path, default=BENCH / "results")
    ap.add_argument("--own-malloc", action="store_true",
                    help="keep this process's malloc settings (default: the daemon's, DAEMON_MALLOC)")
    args = ap.parse_args()
    if not args.own_malloc and any(os.environ.get(k) != v for k, v in DAEMON_MALLOC.items()):
        # glibc reads them at start-up: run again with the daemon's (large copies are fresh mappings)
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **DAEMON_MALLOC})
    load = os.getloadavg()
    rows = []
    for kind in args.kinds.split(","):
        row = run_kind(kind, args)
        rows.append(row)
        print(f"{kind:10s} {row['clean_mb_s']:8.0f} MB/s clean {row['mb_s']:8.0f} MB/s all "
              f"secret lines {row['secret_lines']:6d} missed {row['missed']}", file=sys.stderr, flush=True)
        for example in row["missed_examples"]:
            print("  MISSED:", *example, sep="\n    ", file=sys.stderr)
    from logs import _git_head  # noqa: PLC0415 - the log benchmark's helper

    meta = {"lines": args.lines, "chunk": args.chunk, "rounds": args.rounds, "cpus": os.cpu_count(), "base": args.base,
            "python": platform.python_version(), "load": load, "git": _git_head(),
            "date": time.strftime("%Y-%m-%d %H:%M:%S %z")}
    md = markdown(rows, meta)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "redact-latest.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    (args.out / "redact-latest.md").write_text(md)
    print(md)
    return 1 if any(r["missed"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
