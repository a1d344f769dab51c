"""Log throughput per kind of line (bench/corpus.py): corral vs a bare pipe, same app, same run.

The app (bench/log_app.py COUNT RESULT KIND) writes COUNT lines of one kind of the corpus and
measures its own write time. For each kind, interleaved rounds of: a bare pipe (a trivial reader
that counts newlines), corral with its defaults (timestamps, redaction, rotation at 10 MB) and,
with ``--raw``, corral with ``time = false`` and ``redact = false``. Every line written to the
files is read back: its sequence number must be there exactly once (lost, duplicated), and with
redaction on its text must be the reference redaction of the line the app wrote (``wrong``:
a secret not redacted, or a line changed that should not be; must be 0).

    .venv/bin/python bench/logs_corpus.py [--lines 1000000] [--rounds 3] [--kinds seq,json] [--raw]

Standard library only (plus corral, for the reference). Results: bench/results/logs-corpus-latest.{json,md}.
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
import time
from pathlib import Path
from typing import Any, Callable

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

import corpus  # noqa: E402
import logs  # noqa: E402
from corral.app.redact import default_redactor  # noqa: E402
from redact_corpus import reference  # noqa: E402

GOAL = 1.15


def expectation(kind: str) -> Callable[[int, bytes], bool]:
    """``expect(number, file_line)``: whether a stamped line of the file is the reference redaction
    of the line the app wrote with that number."""
    redactor = default_redactor()
    refs = []
    for j, tpl in enumerate(corpus.templates(kind, corpus.DISTINCT)):
        ref = reference(redactor, tpl.line(j)).rstrip(b"\n")
        head = tpl.head[tpl.head.rfind(b"seq"):] if b"seq" in tpl.head else tpl.head  # seq=, "seq":", L
        marker = head + b"%0*d" % (tpl.width, j)
        if ref.count(marker) != 1:
            raise logs.BenchError(f"{kind} line {j}: its number is not once in its redaction: {ref[:200]!r}")
        refs.append((ref, marker, head, tpl.width))
    n = len(refs)

    def expect(i: int, line: bytes) -> bool:
        ref, marker, head, width = refs[i % n]
        return line.split(b" ", 1)[-1] == ref.replace(marker, head + b"%0*d" % (width, i))

    return expect


def last_marker(tpl: corpus.Template, i: int) -> bytes:
    """What shows that line ``i`` is in the files: its number with what is just before it
    (``seq=0999999``, ``"seq":"0999999``, ``L00999999``), never the end of the line alone: the
    ``seq`` lines all end alike, and that made the wait end at the first line written."""
    return tpl.head[-5:] + b"%0*d" % (tpl.width, i)


def contenders_for(kind: str, tmp: Path, env: dict[str, str], raw: bool, base: str | None) -> list[logs.Contender]:
    chosen: list[logs.Contender] = [
        logs.Bare(tmp, env),
        logs.Corral(tmp, env, "corral", "corral: timestamps + redaction, rotation at 10 MB (the defaults)", ""),
    ]
    if base:  # another corral tree (e.g. main, unpacked by git archive) run the same way, for a before/after
        chosen.append(logs.Corral(tmp / "base", {**env, "PYTHONPATH": base}, "corral-base",
                                  f"corral from {base}, the defaults", ""))
    if raw:
        chosen.append(logs.Corral(tmp, env, "corral-noredact", "corral: timestamps, no redaction", "redact = false"))
        chosen.append(logs.Corral(tmp, env, "corral-raw", "corral: no timestamps, no redaction",
                                  "time = false\nredact = false"))
    seq = corpus.SEQ_RE[kind]
    tpl = corpus.templates(kind, corpus.DISTINCT)
    for c in chosen:
        c.kind = kind
        c.last = lambda i: last_marker(tpl[i % len(tpl)], i)
        c.check = {"seq": seq, "expect": expectation(kind)} if c.key.startswith("corral") and "raw" not in c.key \
            and "noredact" not in c.key else {"seq": seq}
    return chosen


def run_kind(kind: str, args: argparse.Namespace, tmp: Path, env: dict[str, str],
             log: Callable[[str], None]) -> dict[str, Any]:
    chosen = contenders_for(kind, tmp / kind, env, args.raw, args.base)
    (tmp / kind / "base").mkdir(parents=True)
    for c in chosen:
        c.setup()
    runs: dict[str, list[dict[str, Any]]] = {c.key: [] for c in chosen}
    try:
        for r in range(args.rounds):
            for c in chosen:
                figures = c.once(args.lines)
                runs[c.key].append(figures)
                log(f"{kind} round {r + 1}: {c.key}: app {figures['app_write_s']:.3f} s, lost {figures['lost']}, "
                    f"dup {figures['duplicated']}, wrong {figures.get('wrong', '-')}")
    finally:
        for c in chosen:
            c.teardown()
    out = {key: logs.summarize(rs) for key, rs in runs.items()}
    for key, rs in runs.items():
        out[key]["wrong"] = max(r.get("wrong", 0) for r in rs)
        out[key]["ratios"] = [r["app_write_s"] / b["app_write_s"] for r, b in zip(rs, runs["bare"])]
    return out


def markdown(results: dict[str, Any], meta: dict[str, Any]) -> str:
    raw = any("corral-raw" in r for r in results.values())
    base = any("corral-base" in r for r in results.values())
    out = [f"{meta['lines']:,} lines per kind; app write times: medians of {meta['rounds']} interleaved round(s); "
           "× bare: the median of the rounds' ratios. Goal: corral's "
           f"app write time ≤ {GOAL}× the bare pipe's with its defaults (timestamps, redaction, rotation "
           "at 10 MB), 0 lines lost, 0 wrong. Daemon CPU: the daemon's CPU time for the round (median), "
           "and its ratio to the bare pipe's app write time: below 1, the daemon keeps up with the app on "
           "a core of its own.", "",
           "| kind | bytes/line | bare pipe | corral (defaults) | × bare | each round | daemon CPU (÷ bare) |"
           + (" no redaction / neither: × bare |" if raw else "") + (" before (--base): × bare |" if base else "")
           + " lost | dup | wrong |",
           "|---|---|---|---|---|---|---|" + ("---|" if raw else "") + ("---|" if base else "") + "---|---|---|"]
    for kind, r in results.items():
        bare, cor = r["bare"], r["corral"]
        ratio = statistics.median(cor["ratios"])  # each round's corral / bare, interleaved
        each = ", ".join(f"{x:.2f}" for x in cor["ratios"])
        cells = [kind, f"{r['line_bytes']:.0f}", f"{bare['app_write_s']:.3f} s", f"{cor['app_write_s']:.3f} s",
                 f"{ratio:.2f}×" + ("" if round(ratio, 2) <= GOAL else " **(over)**"), each,
                 f"{cor['daemon_cpu_s']:.2f} s ({cor['daemon_cpu_s'] / bare['app_write_s']:.2f})"]
        if raw:
            cells.append(f"{statistics.median(r['corral-noredact']['ratios']):.2f}× / "
                         f"{statistics.median(r['corral-raw']['ratios']):.2f}×")
        if base:
            cells.append(f"{statistics.median(r['corral-base']['ratios']):.2f}×")
        cells += [f"{cor['lost']:,}", f"{cor['duplicated']:,}", f"{cor['wrong']:,}"]
        out.append("| " + " | ".join(cells) + " |")
    out += ["", f"Machine: {meta['cpus']} CPU(s), Python {meta['python']}; corral {meta['git']}. Load average "
            f"{meta['load_before'][0]:.2f} before, {meta['load_after'][0]:.2f} after; {meta['seconds']:.0f} s "
            f"({meta['date']})."]
    return "\n".join(out) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--kinds", default=",".join(corpus.KINDS))
    ap.add_argument("--raw", action="store_true", help="also corral without timestamps and redaction")
    ap.add_argument("--base", help="also run corral from this tree (PYTHONPATH), e.g. main from git archive")
    ap.add_argument("--out", type=Path, default=BENCH / "results")
    args = ap.parse_args()
    started = time.monotonic()
    tag = f"logs-corpus-{os.getpid()}-{random.randrange(10**9)}"
    tmp = Path(tempfile.mkdtemp(prefix="corral-bench-logs-corpus-"))
    os.chdir(tmp)  # `python -m corral.daemon` puts the working directory first on sys.path (--base)
    env = {k: v for k, v in os.environ.items() if k not in ("CORRAL_HOME", "PM2_HOME", "PYTHONUNBUFFERED")}
    env[logs.TAG_VAR] = tag
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))

    def log(msg: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {msg}", file=sys.stderr, flush=True)

    load_before, results, status = os.getloadavg(), {}, 1
    try:
        for kind in args.kinds.split(","):
            results[kind] = run_kind(kind, args, tmp, env, log)
            results[kind]["line_bytes"] = sum(map(len, corpus.lines(kind, 2000))) / 2000
        meta = {"lines": args.lines, "rounds": args.rounds, "cpus": os.cpu_count(), "python": sys.version.split()[0],
                "git": logs._git_head(), "load_before": load_before, "load_after": os.getloadavg(),
                "seconds": time.monotonic() - started, "date": time.strftime("%Y-%m-%d %H:%M:%S %z")}
        md = markdown(results, meta)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "logs-corpus-latest.json").write_text(json.dumps({"meta": meta, "results": results}, indent=1))
        (args.out / "logs-corpus-latest.md").write_text(md)
        print(md)
        bad = [k for k, r in results.items() if r["corral"]["lost"] or r["corral"]["duplicated"] or r["corral"]["wrong"]]
        status = 1 if bad else 0
    except logs.BenchError as exc:
        print(f"logs_corpus.py: FAILED: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        print("logs_corpus.py: interrupted, cleaning up", file=sys.stderr)
        status = 130
    finally:
        killed = logs.cleanup(tag, tmp, keep=False)
        if killed:
            print(f"cleanup: SIGKILLed {len(killed)} leftover process(es)", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
