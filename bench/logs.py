"""Log throughput: corral vs PM2 vs supervisord vs a bare pipe, same app, same machine, one run.

The app (bench/log_app.py) writes 1,000,000 lines of about 100 bytes to stdout and measures its
own write time.  For each contender: the app's write time (a slow log reader slows the app: the
pipe fills), the time from the app's first write until every line is in the log files, and the
lines lost (every line carries a sequence number; each must be in the files exactly once).

Run it through ``bench/run_logs.sh`` (installs the pinned PM2 and supervisord first, always
cleans up).  Directly:

    .venv/bin/python bench/logs.py [--lines 1000000] [--rounds 1] [--only corral,bare]

Standard library only.  Every process started carries ``CORRAL_BENCH_TAG=<tag>`` in its
environment; cleanup kills exactly those.  Homes and log folders live in a temporary folder.
Results: bench/results/logs-latest.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
APP = BENCH / "log_app.py"
PM2_BIN = BENCH / "node_modules" / ".bin" / "pm2"
SUPERVISOR_VENV = BENCH / ".work" / "supervisor-venv"
SUPERVISOR_VERSION = "4.3.0"
PY = sys.executable
TAG_VAR = "CORRAL_BENCH_TAG"
SEQ = re.compile(rb"seq=(\d{7}) ")
POLL = 0.01


class BenchError(Exception):
    """A step failed or missed its deadline."""


def corral_cli() -> list[str]:
    script = Path(PY).parent / "corral"
    return [str(script)] if script.exists() else [PY, "-m", "corral"]


def run(cmd: list[str], env: dict[str, str], timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess:
    try:
        cp = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BenchError(f"{' '.join(cmd)}: no answer within {timeout:.0f} s") from None
    if check and cp.returncode != 0:
        raise BenchError(f"{' '.join(cmd)}: exit status {cp.returncode}: {cp.stderr.decode(errors='replace')[-500:]}")
    return cp


# -- counting what reached the files ----------------------------------------------------------------
def log_files(folder: Path, prefix: str) -> list[Path]:
    """The log files (rotated ones too) whose name starts with ``prefix``; a file being gzipped
    (``x.log`` with ``x.log.gz`` or ``x.log.gz.tmp`` beside it) is counted once."""
    names = {p.name for p in folder.iterdir() if p.name.startswith(prefix)}
    keep = [n for n in names if not n.endswith(".tmp") and not (n.endswith(".gz") and n[:-3] in names)]
    return sorted(folder / n for n in keep)


def read_file(path: Path) -> bytes:
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        import gzip

        data = gzip.decompress(data)
    return data


def count_lines(files: list[Path], expected: int, seq: re.Pattern[bytes] = SEQ,
                expect: Callable[[int, bytes], bool] | None = None) -> dict[str, int]:
    """How many of the ``expected`` sequence numbers are in the files: found, lost, duplicated,
    and lines that are not the app's (broken lines); with ``expect(number, line)``, also the
    lines whose text is not the expected one (``wrong``: a secret not redacted, or more)."""
    seen = bytearray(expected)
    dup = foreign = wrong = 0
    for path in files:
        for line in read_file(path).splitlines():
            m = seq.search(line)
            if m is None:
                foreign += 1
                continue
            i = int(m.group(1))
            if i < expected and seen[i]:
                dup += 1
            elif i < expected:
                seen[i] = 1
            if expect is not None and not expect(i, line):
                wrong += 1
    found = sum(seen)
    out = {"found": found, "lost": expected - found, "duplicated": dup, "foreign": foreign}
    return out if expect is None else {**out, "wrong": wrong}


def last_line_seen(files: list[Path], last: bytes) -> bool:
    """Whether the app's last line is in the newest part of the files (cheap: file tails only)."""
    for path in files:
        if path.name.endswith(".gz"):
            continue
        try:
            with open(path, "rb") as f:
                size = f.seek(0, os.SEEK_END)
                f.seek(max(0, size - 4096))
                if last in f.read():
                    return True
        except OSError:
            continue
    return False


def wait_on_disk(files: Callable[[], list[Path]], count: int, result: Path, timeout: float,
                 last: bytes | None = None) -> tuple[dict[str, Any], float]:
    """Wait for the app to finish and its last line (``last``) to be in the files; returns the
    app's result and the wall time the last line was seen."""
    last = last or b"seq=%07d " % (count - 1)
    deadline = time.monotonic() + timeout
    app: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        if app is None and result.exists() and result.read_text().strip():
            app = json.loads(result.read_text().splitlines()[-1])
        if last_line_seen(files(), last):
            seen_at = time.time()
            while app is None and time.monotonic() < deadline:
                if result.exists() and result.read_text().strip():
                    app = json.loads(result.read_text().splitlines()[-1])
                time.sleep(POLL)
            if app is not None:
                return app, seen_at
        time.sleep(POLL)
    raise BenchError(f"the last line did not reach the files within {timeout:.0f} s (app result: {app})")


def settle(files: Callable[[], list[Path]], count: int, timeout: float, **check: Any) -> dict[str, int]:
    """Count; if lines are missing, give the tool a little longer before calling them lost."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            counted = count_lines(files(), count, **check)
        except FileNotFoundError:  # a rotated file was just compressed: count again
            continue
        if counted["lost"] == 0 or time.monotonic() > deadline:
            return counted
        time.sleep(0.5)


# -- the contenders -----------------------------------------------------------------------------------
class Contender:
    """One way of running the app; ``once`` returns the figures of one run."""

    key = ""
    label = ""
    kind: str | None = None  # a kind of line of bench/corpus.py (None: log_app.py's own line)
    check: dict[str, Any] = {}  # count_lines() arguments for that kind
    last: Callable[[int], bytes] | None = None  # the last line's number as it is written

    def __init__(self, tmp: Path, env: dict[str, str]) -> None:
        self.tmp = tmp
        self.env = env
        self.runs = 0

    def app(self, count: int, result: Path) -> list[str]:
        return [str(APP), str(count), str(result), *([self.kind] if self.kind else [])]

    def setup(self) -> None:
        pass

    def teardown(self) -> None:
        pass

    def once(self, count: int) -> dict[str, Any]:
        raise NotImplementedError

    def _names(self) -> tuple[str, Path]:
        self.runs += 1
        name = f"{self.key}-{self.runs}"
        return name, self.tmp / f"{name}.result"

    def _measure(self, count: int, files: Callable[[], list[Path]], result: Path, timeout: float) -> dict[str, Any]:
        app, seen_at = wait_on_disk(files, count, result, timeout, self.last(count - 1) if self.last else None)
        counted = settle(files, count, 10.0, **self.check)
        paths = files()
        return {"app_write_s": app["write_s"], "on_disk_s": seen_at - app["start"], **counted,
                "files": len(paths), "bytes": sum(p.stat().st_size for p in paths)}


class Bare(Contender):
    key, label = "bare", "bare pipe (a trivial reader)"
    READER = ("import os, sys\nn = 0\nwhile True:\n    d = os.read(0, 1 << 20)\n    if not d:\n        break\n"
              "    n += d.count(b'\\n')\nsys.stdout.write(str(n))\n")

    def once(self, count: int) -> dict[str, Any]:
        _, result = self._names()
        app = subprocess.Popen([PY, *self.app(count, result)], stdout=subprocess.PIPE, env=self.env,
                               stdin=subprocess.DEVNULL)
        reader = subprocess.Popen([PY, "-c", self.READER], stdin=app.stdout, stdout=subprocess.PIPE, env=self.env)
        assert app.stdout is not None
        app.stdout.close()
        out, _ = reader.communicate(timeout=120)
        done = time.time()
        app.wait(30)
        info = json.loads(result.read_text().splitlines()[-1])
        lines = int(out or 0)
        return {"app_write_s": info["write_s"], "on_disk_s": done - info["start"], "found": lines,
                "lost": count - lines, "duplicated": 0, "foreign": 0, "files": 0, "bytes": 0}


class Corral(Contender):
    def __init__(self, tmp: Path, env: dict[str, str], key: str, label: str, settings: str) -> None:
        super().__init__(tmp, {**env, "CORRAL_HOME": str(tmp / "corral")})
        self.key, self.label, self.settings = key, label, settings
        self.logs = tmp / "corral" / "logs"

    def setup(self) -> None:
        out = run([*corral_cli(), "ping", "--json"], self.env).stdout
        self.pid = int(json.loads(out)["pid"])

    def teardown(self) -> None:
        run([*corral_cli(), "kill"], self.env, check=False)

    def cpu_s(self) -> float:
        """The daemon's CPU time so far (user + system)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def once(self, count: int) -> dict[str, Any]:
        name, result = self._names()
        cfg = self.tmp / f"{name}.toml"
        cfg.write_text(f'[[apps]]\nname = "{name}"\nscript = "{APP}"\nargs = {json.dumps(self.app(count, result)[1:])}\n'
                       f'interpreter = "{PY}"\nautorestart = false\nlog_retain = "all"\n{self.settings}\n')
        cpu = self.cpu_s()
        run([*corral_cli(), "start", str(cfg)], self.env)
        try:
            figures = self._measure(count, lambda: log_files(self.logs, f"{name}-out"), result, 120)
            figures["daemon_cpu_s"] = self.cpu_s() - cpu  # the start, the app's lines, the checks' wait
            return figures
        finally:
            run([*corral_cli(), "delete", name], self.env, check=False)
            for path in log_files(self.logs, f"{name}-"):  # counted: their dirty pages would be
                path.unlink(missing_ok=True)  # written back during the next rounds, on the same CPUs


class PM2Tool(Contender):
    key, label = "pm2", "PM2 (`time: true`: timestamps; no rotation built in)"

    def __init__(self, tmp: Path, env: dict[str, str]) -> None:
        super().__init__(tmp, {**env, "PM2_HOME": str(tmp / "pm2")})
        self.logs = tmp / "pm2-logs"

    def setup(self) -> None:
        self.logs.mkdir()
        run([str(PM2_BIN), "ping"], self.env)

    def teardown(self) -> None:
        run([str(PM2_BIN), "kill"], self.env, check=False)

    def once(self, count: int) -> dict[str, Any]:
        name, result = self._names()
        cfg = self.tmp / f"{name}.json"
        cfg.write_text(json.dumps({"apps": [{
            "name": name, "script": str(APP), "args": [str(count), str(result)], "interpreter": PY,
            "autorestart": False, "time": True, "merge_logs": True,
            "out_file": str(self.logs / f"{name}-out.log"), "error_file": str(self.logs / f"{name}-err.log")}]}))
        run([str(PM2_BIN), "start", str(cfg)], self.env)
        try:
            return self._measure(count, lambda: log_files(self.logs, f"{name}-out"), result, 180)
        finally:
            run([str(PM2_BIN), "delete", name], self.env, check=False)
            for path in log_files(self.logs, f"{name}-"):  # counted (as for corral)
                path.unlink(missing_ok=True)


class Supervisord(Contender):
    key, label = "supervisord", f"supervisord {SUPERVISOR_VERSION} (rotation at 10 MB; no timestamps)"

    def once(self, count: int) -> dict[str, Any]:
        name, result = self._names()
        home = self.tmp / name
        home.mkdir()
        conf = home / "supervisord.conf"
        conf.write_text(f"""[supervisord]
nodaemon=true
logfile={home}/supervisord.log
pidfile={home}/supervisord.pid

[program:{name}]
command={PY} {APP} {count} {result}
autostart=true
autorestart=false
startsecs=0
stdout_logfile={home}/{name}-out.log
stdout_logfile_maxbytes=10MB
stdout_logfile_backups=1000
stderr_logfile={home}/{name}-err.log
""")
        daemon = subprocess.Popen([str(SUPERVISOR_VENV / "bin" / "supervisord"), "-c", str(conf)], env=self.env,
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            return self._measure(count, lambda: log_files(home, f"{name}-out"), result, 180)
        finally:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(30)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
            for path in log_files(home, f"{name}-"):  # counted (as for corral)
                path.unlink(missing_ok=True)


def contenders(tmp: Path, env: dict[str, str], only: set[str] | None) -> tuple[list[Contender], list[str]]:
    all_: list[Contender] = [
        Bare(tmp, env),
        Corral(tmp, env, "corral", "corral: timestamps + redaction, rotation at 10 MB (the defaults)", ""),
        Corral(tmp, env, "corral-1mb-gz", "corral: timestamps + redaction, rotation at 1 MB + gzip",
               'log_max_size = "1MB"\nlog_compress = true'),
        Corral(tmp, env, "corral-raw", "corral: no timestamps, no redaction, rotation at 10 MB",
               "time = false\nredact = false"),
        PM2Tool(tmp, env),
        Supervisord(tmp, env),
    ]
    notes = []
    if not PM2_BIN.exists():
        notes.append(f"PM2 skipped: {PM2_BIN} is missing (bench/run_logs.sh installs it)")
    if not (SUPERVISOR_VENV / "bin" / "supervisord").exists():
        notes.append(f"supervisord skipped: {SUPERVISOR_VENV} is missing (bench/run_logs.sh installs it)")
    keep = [c for c in all_ if (only is None or c.key in only)
            and not (isinstance(c, PM2Tool) and not PM2_BIN.exists())
            and not (isinstance(c, Supervisord) and not (SUPERVISOR_VENV / "bin" / "supervisord").exists())]
    return keep, notes


def cleanup(tag: str, tmp: Path, keep: bool) -> list[int]:
    """SIGKILL whatever still carries the run's tag, then remove the temporary folder."""
    killed = []
    for _ in range(3):
        pids = []
        for name in os.listdir("/proc"):
            if not name.isdigit() or int(name) == os.getpid():
                continue
            try:
                with open(f"/proc/{name}/environ", "rb") as f:
                    if f"{TAG_VAR}={tag}".encode() in f.read().split(b"\0"):
                        pids.append(int(name))
            except OSError:
                continue
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except ProcessLookupError:
                pass
        time.sleep(0.3)
    if not keep:
        shutil.rmtree(tmp, ignore_errors=True)
    return sorted(set(killed))


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"rounds": len(runs), "runs": runs}
    for key in ("app_write_s", "on_disk_s"):
        out[key] = statistics.median(r[key] for r in runs)
    if all("daemon_cpu_s" in r for r in runs):
        out["daemon_cpu_s"] = statistics.median(r["daemon_cpu_s"] for r in runs)
    for key in ("lost", "duplicated", "foreign"):
        out[key] = max(r[key] for r in runs)
    out["files"] = max(r["files"] for r in runs)
    out["bytes"] = max(r["bytes"] for r in runs)
    return out


def markdown(results: dict[str, Any], labels: dict[str, str], meta: dict[str, Any], notes: list[str]) -> str:
    bare = results.get("bare", {}).get("app_write_s")
    out = [f"{meta['lines']:,} lines of ~{meta['line_bytes']} bytes; median of {meta['rounds']} round(s). "
           "Goal: corral's app write time ≤ 1.15× the bare pipe's with timestamps and redaction on, "
           "0 lines lost, also with rotation on.", "",
           "| contender | app write time | × bare pipe | until all on disk | lines lost | duplicated | broken lines | files |",
           "|---|---|---|---|---|---|---|---|"]
    for key, r in results.items():
        ratio = f"{r['app_write_s'] / bare:.2f}×" if bare else "—"
        files = str(r["files"]) if key != "bare" else "—"
        out.append(f"| {labels[key]} | {r['app_write_s']:.3f} s | {ratio} | {r['on_disk_s']:.3f} s | {r['lost']:,} "
                   f"| {r['duplicated']:,} | {r['foreign']:,} | {files} |")
    out.append("")
    for key in ("corral", "corral-1mb-gz"):
        if key in results and bare:
            ratio = results[key]["app_write_s"] / bare
            met = ratio <= 1.15 and results[key]["lost"] == 0 and results[key]["duplicated"] == 0
            out.append(f"- goal, {labels[key]}: {ratio:.2f}× bare, {results[key]['lost']} lost → "
                       f"{'**met**' if met else '**not met**'}")
    if "pm2" in results and bare:
        out.append(f"- PM2: {results['pm2']['app_write_s'] / bare:.2f}× bare")
    out += [f"- {n}" for n in notes]
    out += ["", f"Machine: {meta['cpus']} CPU(s), {meta['platform']}; Python {meta['python']}, "
            f"node {meta.get('node', '?')}, PM2 {meta.get('pm2', '?')}, supervisor {SUPERVISOR_VERSION}, "
            f"corral {meta['corral_git']}. Load average {meta['loadavg_before'][0]:.2f} before, "
            f"{meta['loadavg_after'][0]:.2f} after; run took {meta['seconds']:.0f} s ({meta['date']})."]
    return "\n".join(out) + "\n"


def _git_head() -> str:
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "corral"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return head + ("+changes" if dirty else "") if head else "?"
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def run_rounds(chosen: list[Contender], lines: int, rounds: int, log: Callable[[str], None]) -> dict[str, Any]:
    for c in chosen:
        c.setup()
    runs: dict[str, list[dict[str, Any]]] = {c.key: [] for c in chosen}
    for r in range(rounds):  # interleaved, so background load hits every contender alike
        for c in chosen:
            figures = c.once(lines)
            runs[c.key].append(figures)
            log(f"round {r + 1}: {c.key}: app {figures['app_write_s']:.3f} s, on disk "
                f"{figures['on_disk_s']:.3f} s, lost {figures['lost']}, dup {figures['duplicated']}")
    for c in chosen:
        c.teardown()
    return {key: summarize(rs) for key, rs in runs.items()}


def run_meta(args: argparse.Namespace, env: dict[str, str], load_before: tuple[float, ...], seconds: float
             ) -> dict[str, Any]:
    meta = {"date": time.strftime("%Y-%m-%d %H:%M:%S %z"), "cpus": os.cpu_count(),
            "platform": platform.platform(), "python": platform.python_version(), "lines": args.lines,
            "line_bytes": 97, "rounds": args.rounds, "corral_git": _git_head(),
            "loadavg_before": load_before, "loadavg_after": os.getloadavg(), "seconds": seconds}
    if PM2_BIN.exists():
        meta["pm2"] = json.loads((BENCH / "node_modules" / "pm2" / "package.json").read_text())["version"]
        meta["node"] = run(["node", "--version"], env).stdout.decode().strip()
    return meta


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--only", help="comma-separated: bare, corral, corral-1mb-gz, corral-raw, pm2, supervisord")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (logs) for a look")
    args = ap.parse_args()

    started = time.monotonic()
    tag = f"logs-{os.getpid()}-{random.randrange(10**9)}"
    tmp = Path(tempfile.mkdtemp(prefix="corral-bench-logs-"))
    env = {k: v for k, v in os.environ.items() if k not in ("CORRAL_HOME", "PM2_HOME", "PYTHONUNBUFFERED")}
    env[TAG_VAR] = tag
    only = set(args.only.split(",")) if args.only else None
    chosen, notes = contenders(tmp, env, only)

    def on_signal(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    def log(msg: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {msg}", file=sys.stderr, flush=True)

    status = 1
    try:
        load_before = os.getloadavg()
        results = run_rounds(chosen, args.lines, args.rounds, log)
        meta = run_meta(args, env, load_before, time.monotonic() - started)
        labels = {c.key: c.label for c in chosen}
        md = markdown(results, labels, meta, notes)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "logs-latest.json").write_text(json.dumps(
            {"meta": meta, "labels": labels, "results": results, "notes": notes}, indent=1) + "\n")
        (args.out / "logs-latest.md").write_text(md)
        print(md)
        status = 0
    except BenchError as exc:
        print(f"logs.py: FAILED: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        print("logs.py: interrupted, cleaning up", file=sys.stderr)
        status = 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for c in chosen:
            try:
                c.teardown()
            except Exception:  # noqa: BLE001 - cleanup must go on
                pass
        killed = cleanup(tag, tmp, args.keep)
        if killed:
            print(f"cleanup: SIGKILLed {len(killed)} leftover process(es)", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
