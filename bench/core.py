"""corral vs PM2 on the same machine in the same run: list latency, daemon memory, start/stop of
50 apps (with a bare fork/exec baseline) and the crash-to-restart gap.

Run it through ``bench/run.sh`` (installs the pinned PM2 first and always cleans up).  Directly:

    .venv/bin/python bench/core.py [--rounds 3] [--ls-calls 20] [--crashes 5]
    .venv/bin/python bench/core.py --cleanup bench/.work/state.json   # kill what a run left

Standard library only.  Both daemons get fresh homes under a temporary folder (never ~/.corral
or ~/.pm2).  Every process the benchmark starts carries ``CORRAL_BENCH_TAG=<tag>`` in its
environment (the idle apps also a unique ``sleep`` argument), so cleanup finds exactly those
processes by pid, even after a crash of this script.  See bench/README.md for what each figure
means.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
DEFAULT_STATE = BENCH / ".work" / "state.json"
CRASH_APP = BENCH / "crash_app.py"
PM2 = BENCH / "node_modules" / ".bin" / "pm2"
PY = sys.executable
SLEEP = shutil.which("sleep") or "/bin/sleep"
TAG_VAR = "CORRAL_BENCH_TAG"

POLL_GAP = 0.02  # pause between two list calls while waiting for a state
PROC_GAP = 0.005  # pause between two /proc scans
CMD_TIMEOUT = 60.0


def corral_cli() -> list[str]:
    script = Path(PY).parent / "corral"
    return [str(script)] if script.exists() else [PY, "-m", "corral"]


class BenchError(Exception):
    """A step failed or missed its deadline: the run stops (and cleans up)."""


# -- small helpers --------------------------------------------------------------------------
class Clock:
    """The whole run's deadline: every wait is capped by it."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def cap(self, timeout: float) -> float:
        left = self.end - time.monotonic()
        if left <= 0:
            raise BenchError("the run's overall deadline passed (see --max-seconds)")
        return min(timeout, left)


def run(cmd: list[str], env: dict[str, str], timeout: float, check: bool = True) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    try:
        cp = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BenchError(f"{' '.join(cmd)}: no answer within {timeout:.0f} s") from None
    elapsed = time.perf_counter() - t0
    if check and cp.returncode != 0:
        raise BenchError(f"{' '.join(cmd)}: exit status {cp.returncode}: "
                         f"{cp.stderr.decode(errors='replace').strip()[-600:]}")
    return elapsed, cp


def pct(values: list[float], p: float) -> float:
    """Percentile by linear interpolation (p in 0..100)."""
    xs = sorted(values)
    if len(xs) == 1:
        return xs[0]
    k = (len(xs) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def summary(values: list[float]) -> dict[str, Any]:
    return {"n": len(values), "median": statistics.median(values), "p90": pct(values, 90),
            "min": min(values), "max": max(values), "mean": statistics.fmean(values),
            "samples": [round(v, 6) for v in values]}


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise BenchError(f"pid {pid}: no VmRSS")


def read_cmdline(pid: int | str) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def has_tag(pid: int | str, tag: str) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return f"{TAG_VAR}={tag}".encode() in f.read().split(b"\0")
    except OSError:
        return False


def time_until_gone(pid: int, timeout: float) -> float:
    """Seconds until pid has exited (gone or a zombie), polled every 2 ms; timeout if never."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                    break
        except OSError:
            break
        time.sleep(0.002)
    return time.perf_counter() - t0


def all_pids() -> list[int]:
    return [int(n) for n in os.listdir("/proc") if n.isdigit()]


# -- watching exec and exit in /proc ----------------------------------------------------------
class ProcWatch:
    """Times, independently of any tool, when N idle apps have exec'd or have all exited.

    An idle app is a process whose argv is ``[sleep, MARKER]``; a zombie has an empty cmdline,
    so it counts as exited.  Pids that existed before the step are skipped (our apps are new),
    which keeps a scan cheap (~0.5 ms) and polling every 5 ms light.
    """

    def __init__(self, marker: str) -> None:
        self.marker = marker.encode()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.hit: float | None = None
        self.pids: set[int] = set()

    def _is_app(self, pid: int) -> bool:
        parts = read_cmdline(pid).split(b"\0")
        return len(parts) >= 2 and parts[1] == self.marker

    def arm_exec(self, n: int, timeout: float) -> None:
        """Start watching for n new app processes."""
        old = set(all_pids())
        self.pids = set()
        self.hit = None
        self._stop.clear()

        def loop() -> None:
            deadline = time.monotonic() + timeout
            while not self._stop.is_set() and time.monotonic() < deadline:
                for pid in all_pids():
                    if pid not in old and pid not in self.pids and self._is_app(pid):
                        self.pids.add(pid)
                if len(self.pids) >= n:
                    self.hit = time.perf_counter()
                    return
                time.sleep(PROC_GAP)

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()

    def arm_exit(self, pids: set[int], timeout: float) -> None:
        """Start watching until every one of pids has exited."""
        self.hit = None
        self._stop.clear()
        alive = set(pids)

        def loop() -> None:
            deadline = time.monotonic() + timeout
            while not self._stop.is_set() and time.monotonic() < deadline:
                for pid in list(alive):
                    if not self._is_app(pid):
                        alive.discard(pid)
                if not alive:
                    self.hit = time.perf_counter()
                    return
                time.sleep(PROC_GAP)

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()

    def wait(self, timeout: float) -> float:
        assert self._thread is not None
        self._thread.join(timeout)
        self._stop.set()
        self._thread.join(1.0)
        if self.hit is None:
            raise BenchError("the /proc watch missed its deadline")
        return self.hit


# -- the two tools ----------------------------------------------------------------------------
class Tool:
    name = ""
    config_suffix = ""

    def __init__(self, home: Path, env: dict[str, str], clock: Clock) -> None:
        self.home = home
        self.env = env
        self.clock = clock

    # each returns the command's wall time
    def cli(self, *args: str, timeout: float = CMD_TIMEOUT, check: bool = True) -> tuple[float, subprocess.CompletedProcess]:
        return run([*self.command(), *args], self.env, self.clock.cap(timeout), check)

    def command(self) -> list[str]:
        raise NotImplementedError

    def list_args(self) -> list[str]:
        raise NotImplementedError

    def parse_list(self, out: bytes) -> list[dict[str, Any]]:
        raise NotImplementedError

    def daemon_pid(self) -> int:
        raise NotImplementedError

    def write_config(self, path: Path, apps: list[dict[str, Any]]) -> Path:
        raise NotImplementedError

    def rows(self) -> tuple[float, list[dict[str, Any]]]:
        elapsed, cp = self.cli(*self.list_args())
        return elapsed, self.parse_list(cp.stdout)

    def wait_rows(self, what: str, pred: Callable[[list[dict[str, Any]]], bool], timeout: float) -> tuple[float, int]:
        """Poll the tool's own list until pred holds; the time is the end of the confirming call."""
        deadline = time.monotonic() + self.clock.cap(timeout)
        polls = 0
        rows: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            _, rows = self.rows()
            polls += 1
            if pred(rows):
                return time.perf_counter(), polls
            time.sleep(POLL_GAP)
        states = sorted({r["status"] for r in rows})
        raise BenchError(f"{self.name}: {what}: not reached within {timeout:.0f} s "
                         f"({len(rows)} rows, statuses {states})")


class Corral(Tool):
    name = "corral"
    config_suffix = ".toml"

    def command(self) -> list[str]:
        return corral_cli()

    def list_args(self) -> list[str]:
        return ["ls", "--json"]

    def parse_list(self, out: bytes) -> list[dict[str, Any]]:
        return [{"name": r["name"], "status": r["status"], "pid": r.get("pid"), "restarts": r.get("restarts")}
                for r in json.loads(out)]

    def daemon_pid(self) -> int:
        lines = [ln for ln in (self.home / "daemon.lock").read_text().splitlines() if ln.strip()]
        return int(lines[-1])

    def write_config(self, path: Path, apps: list[dict[str, Any]]) -> Path:
        path = path.with_suffix(".toml")
        out = []
        for app in apps:  # JSON strings are valid TOML basic strings for these values
            out.append("[[apps]]")
            out.append(f"name = {json.dumps(app['name'])}")
            out.append(f"script = {json.dumps(app['script'])}")
            out.append(f"args = [{', '.join(json.dumps(a) for a in app['args'])}]")
            out.append(f"interpreter = {json.dumps(app['interpreter'])}")
            out.append("")
        path.write_text("\n".join(out))
        return path

    def events(self, name: str) -> list[dict[str, Any]]:
        _, cp = self.cli("events", name, "--lines", "200", "--json")
        return json.loads(cp.stdout)


class PM2Tool(Tool):
    name = "pm2"
    config_suffix = ".json"

    def command(self) -> list[str]:
        return [str(PM2)]

    def list_args(self) -> list[str]:
        return ["jlist"]

    def parse_list(self, out: bytes) -> list[dict[str, Any]]:
        text = out.decode(errors="replace")
        start = text.find("[")
        if start < 0:
            raise BenchError(f"pm2 jlist: no JSON in {text[:200]!r}")
        return [{"name": p["name"], "status": p["pm2_env"]["status"], "pid": p.get("pid"),
                 "restarts": p["pm2_env"].get("restart_time")} for p in json.loads(text[start:])]

    def daemon_pid(self) -> int:
        return int((self.home / "pm2.pid").read_text().strip())

    def write_config(self, path: Path, apps: list[dict[str, Any]]) -> Path:
        path = path.with_suffix(".json")
        path.write_text(json.dumps({"apps": apps}, indent=1))
        return path


# -- state and cleanup --------------------------------------------------------------------------
def exit_on_signals() -> None:
    """SIGTERM and SIGHUP end the run as Ctrl-C does, so its ``finally`` cleans up."""
    def on_signal(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)


def save_state(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state))
    os.replace(tmp, path)


def tagged_pids(tag: str, marker: str) -> list[int]:
    me = os.getpid()
    mark = marker.encode()
    found = []
    for pid in all_pids():
        if pid == me:
            continue
        parts = read_cmdline(pid).split(b"\0")
        if (len(parts) >= 2 and parts[1] == mark) or has_tag(pid, tag):
            found.append(pid)
    return found


def _pid_from(path: str) -> int | None:
    try:
        with open(path) as f:
            lines = [ln.strip() for ln in f if ln.strip()]
        return int(lines[-1]) if lines else None
    except (OSError, ValueError):
        return None


def cleanup(state: dict[str, Any], quiet: bool = False) -> list[int]:
    """Stop both daemons, kill whatever tagged process is left, remove the temporary folder.

    Idempotent; returns the pids that had to be SIGKILLed."""
    env = {k: v for k, v in os.environ.items() if k not in ("CORRAL_HOME", "PM2_HOME")}
    env.update(state.get("env", {}))
    tag, marker = state.get("tag"), state.get("marker")
    # ask each daemon that is still alive to stop its apps and exit (a CLI call to a dead
    # daemon could start a new one: PM2 does)
    for home, pidfile, cmd in ((state.get("corral_home"), "daemon.lock", [*corral_cli(), "kill"]),
                               (state.get("pm2_home"), "pm2.pid", [str(PM2), "kill"])):
        pid = _pid_from(os.path.join(home, pidfile)) if home else None
        if pid and tag and has_tag(pid, tag):
            try:
                run(cmd, env, 40, check=False)
            except BenchError:
                pass
    killed: list[int] = []
    if tag and marker:
        # a daemon may still be on its way out after its `kill` returned (PM2's God daemon is):
        # give everything a few seconds to exit on its own before forcing it
        deadline = time.monotonic() + 5.0
        while tagged_pids(tag, marker) and time.monotonic() < deadline:
            time.sleep(0.1)
        for _ in range(3):
            pids = tagged_pids(tag, marker)
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                except ProcessLookupError:
                    pass
            time.sleep(0.3)
    # the bare baseline's children are ours: reap any that is left
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass
    if state.get("tmp") and os.path.isdir(state["tmp"]) and not state.get("keep"):
        shutil.rmtree(state["tmp"], ignore_errors=True)
    if killed and not quiet:
        print(f"cleanup: SIGKILLed {len(killed)} leftover process(es): {sorted(set(killed))}", file=sys.stderr)
    return sorted(set(killed))


# -- the measurements ---------------------------------------------------------------------------
def idle_apps(prefix: str, n: int, marker: str) -> list[dict[str, Any]]:
    return [{"name": f"{prefix}-{i:02d}", "script": SLEEP, "args": [marker], "interpreter": "none"}
            for i in range(n)]


def all_status(names: set[str], status: str) -> Callable[[list[dict[str, Any]]], bool]:
    def pred(rows: list[dict[str, Any]]) -> bool:
        mine = [r for r in rows if r["name"] in names]
        return len(mine) == len(names) and all(r["status"] == status for r in mine)
    return pred


def empty(rows: list[dict[str, Any]]) -> bool:
    return not rows


def median_of(cmd: list[str], env: dict[str, str], n: int, clock: Clock) -> dict[str, Any]:
    return summary([run(cmd, env, clock.cap(30))[0] for _ in range(n)])


def measure_ls(tools: list[Tool], work: Path, marker: str, calls: int, warmup: int, log: Callable[[str], None]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    names = {t.name: {a["name"] for a in idle_apps("ls", 10, marker)} for t in tools}
    for t in tools:
        cfg = t.write_config(work / f"ls-{t.name}", idle_apps("ls", 10, marker))
        t.cli("start", str(cfg))
        t.wait_rows("10 apps online", all_status(names[t.name], "online"), 30)
    times: dict[str, list[float]] = {t.name: [] for t in tools}
    for i in range(warmup + calls):  # interleaved, so background noise hits both alike
        for t in tools:
            elapsed, cp = t.cli(*t.list_args())
            if len(t.parse_list(cp.stdout)) != 10:
                raise BenchError(f"{t.name}: the list does not show the 10 apps")
            if i >= warmup:
                times[t.name].append(elapsed)
    for t in tools:
        out[t.name] = summary(times[t.name])
        out[t.name]["daemon_rss_kib_after"] = rss_kib(t.daemon_pid())
        t.cli("delete", "all")
        t.wait_rows("list empty", empty, 30)
        log(f"ls x{calls} with 10 apps: {t.name} median {out[t.name]['median'] * 1000:.1f} ms")
    return out


def bare_round(n: int, marker: str, env: dict[str, str], clock: Clock) -> dict[str, float]:
    watch = ProcWatch(marker)
    watch.arm_exec(n, clock.cap(30))
    t0 = time.perf_counter()
    procs = [subprocess.Popen([SLEEP, marker], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env=env, start_new_session=True)
             for _ in range(n)]
    t_loop = time.perf_counter()
    t_exec = watch.wait(clock.cap(30))
    pids = {p.pid for p in procs}
    watch.arm_exit(pids, clock.cap(30))
    t1 = time.perf_counter()
    for p in procs:
        p.terminate()
    for p in procs:
        p.wait(clock.cap(30))
    t_reaped = time.perf_counter()
    t_gone = watch.wait(clock.cap(30))
    return {"start_exec_s": t_exec - t0, "popen_loop_s": t_loop - t0,
            "stop_reaped_s": t_reaped - t1, "stop_gone_s": t_gone - t1}


BARE_COMMAND = """
import subprocess, sys
n, program, marker = int(sys.argv[1]), sys.argv[2], sys.argv[3]
for _ in range(n):
    subprocess.Popen([program, marker], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL, start_new_session=True).returncode = 0
"""


def bare_command_round(n: int, marker: str, env: dict[str, str], clock: Clock) -> dict[str, float]:
    """The same 50 fork/execs as a command a user runs (an interpreter that starts, spawns and exits),
    timed like `corral start`: from the command until all 50 have exec'd."""
    watch = ProcWatch(marker)
    watch.arm_exec(n, clock.cap(30))
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", BARE_COMMAND, str(n), SLEEP, marker], env=env, check=True,
                   timeout=clock.cap(30))
    t_exec = watch.wait(clock.cap(30))
    for pid in watch.pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return {"start_exec_s": t_exec - t0}


def tool_round(t: Tool, cfg: Path, names: set[str], marker: str, settle: float) -> dict[str, Any]:
    n = len(names)
    watch = ProcWatch(marker)
    watch.arm_exec(n, t.clock.cap(60))
    t0w = time.time()
    t0 = time.perf_counter()
    cmd_s, _ = t.cli("start", str(cfg))
    t_list, polls = t.wait_rows(f"{n} apps online", all_status(names, "online"), 60)
    t_exec = watch.wait(t.clock.cap(60))
    pids = set(watch.pids)
    time.sleep(settle)
    rss = rss_kib(t.daemon_pid())
    _, rows = t.rows()
    listed = {r["pid"] for r in rows if r["name"] in names}
    split = corral_start_split(t, t0w, names) if isinstance(t, Corral) else {}
    watch.arm_exit(pids, t.clock.cap(60))
    t1 = time.perf_counter()
    stop_cmd_s, _ = t.cli("stop", "all")
    t_stopped, stop_polls = t.wait_rows(f"{n} apps stopped", all_status(names, "stopped"), 60)
    t_gone = watch.wait(t.clock.cap(60))
    t.cli("delete", "all")
    t.wait_rows("list empty", empty, 30)
    return {"start_cmd_s": cmd_s, "start_list_s": t_list - t0, "start_exec_s": t_exec - t0,
            "start_polls": polls, "rss_kib_50": rss, "listed_pids_match": listed == pids,
            "stop_cmd_s": stop_cmd_s, "stop_list_s": t_stopped - t1, "stop_gone_s": t_gone - t1,
            "stop_polls": stop_polls, **split}


def corral_start_split(t: Corral, t0w: float, names: set[str]) -> dict[str, float]:
    """From corral's own events: when the daemon began (CLI start-up + config load before it),
    and how long it took to spawn the apps."""
    _, cp = t.cli("events", "all", "--lines", "1000", "--json")
    evs = [e for e in json.loads(cp.stdout) if e["ts"] >= t0w and e["app"] in names]
    starts = [e["ts"] for e in evs if e["kind"] == "start"]
    spawns = [e["ts"] for e in evs if e["kind"] == "spawn"]
    if not starts or len(spawns) < len(names):
        return {}
    return {"cli_until_daemon_acts_s": min(starts) - t0w, "daemon_spawns_s": max(spawns) - min(starts)}


def measure_start_stop(tools: list[Tool], work: Path, marker: str, rounds: int, settle: float,
                       env: dict[str, str], clock: Clock, log: Callable[[str], None]) -> dict[str, Any]:
    n = 50
    apps = idle_apps("idle", n, marker)
    names = {a["name"] for a in apps}
    cfgs = {t.name: t.write_config(work / f"idle50-{t.name}", apps) for t in tools}
    res: dict[str, list[dict[str, Any]]] = {"bare": [], "bare_command": [], **{t.name: [] for t in tools}}
    for r in range(rounds):
        res["bare"].append(bare_round(n, marker, env, clock))
        res["bare_command"].append(bare_command_round(n, marker, env, clock))
        for t in tools:
            res[t.name].append(tool_round(t, cfgs[t.name], names, marker, settle))
        log(f"round {r + 1}/{rounds}: " + ", ".join(
            f"{k} start {v[-1].get('start_list_s', v[-1].get('start_exec_s')):.3f} s" for k, v in res.items()))
    out: dict[str, Any] = {}
    for who, rs in res.items():
        out[who] = {key: summary([x[key] for x in rs]) for key in rs[0] if isinstance(rs[0][key], float)}
        if who not in ("bare", "bare_command"):
            out[who]["rss_kib_50"] = [x["rss_kib_50"] for x in rs]
            out[who]["listed_pids_match"] = all(x["listed_pids_match"] for x in rs)
            out[who]["start_polls"] = [x["start_polls"] for x in rs]
    return out


def parse_crash_log(path: Path) -> tuple[list[float], list[float]]:
    """Gaps exit -> next start (seconds), and uptimes, from the app's own stamps."""
    lines = [ln.split() for ln in path.read_text().splitlines() if ln.strip()]
    gaps, uptimes = [], []
    last_start = last_exit = None
    for kind, ts, _pid in lines:
        t = float(ts)
        if kind == "start":
            if last_exit is not None:
                gaps.append(t - last_exit)
                last_exit = None
            last_start = t
        elif kind == "exit":
            if last_start is not None:
                uptimes.append(t - last_start)
            last_exit = t
    return gaps, uptimes


def events_gaps(events: list[dict[str, Any]]) -> list[float]:
    gaps = []
    last_exit = None
    for ev in sorted(events, key=lambda e: e["ts"]):
        if ev["kind"] == "exit":
            last_exit = ev["ts"]
        elif ev["kind"] == "spawn" and last_exit is not None:
            gaps.append(ev["ts"] - last_exit)
            last_exit = None
    return gaps


def measure_crash(tools: list[Tool], work: Path, crashes: int, uptime: float, clock: Clock,
                  env: dict[str, str], log: Callable[[str], None]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    # the floor: this script spawns the same app directly (fork/exec + interpreter start-up)
    floor = []
    probe = work / "crash-floor.log"
    for _ in range(crashes):
        probe.unlink(missing_ok=True)
        t0 = time.time()
        subprocess.run([PY, str(CRASH_APP), str(probe), "0"], env=env, timeout=clock.cap(30))
        floor.append(float(probe.read_text().split()[1]) - t0)
    out["bare_spawn_to_app_start"] = summary(floor)
    # Both tools' crashers run at the same time (so background load hits both alike), offset by
    # half an uptime so that their restarts never overlap.
    stamps = {t.name: work / f"crash-{t.name}.log" for t in tools}
    for i, t in enumerate(tools):
        stamps[t.name].unlink(missing_ok=True)
        app = {"name": "crasher", "script": str(CRASH_APP), "args": [str(stamps[t.name]), str(uptime)],
               "interpreter": PY}
        t.cli("start", str(t.write_config(work / f"crash-{t.name}", [app])))
        if i + 1 < len(tools):
            first = time.monotonic() + clock.cap(15)
            while not (stamps[t.name].exists() and "start " in stamps[t.name].read_text()):
                if time.monotonic() > first:
                    raise BenchError(f"{t.name}: the crashing app did not start")
                time.sleep(0.01)
            time.sleep(uptime / 2)
    deadline = time.monotonic() + clock.cap((crashes + 1) * (uptime + 1.0) + 15)
    counts: dict[str, int] = {}
    while time.monotonic() < deadline:
        counts = {k: (p.read_text().count("start ") if p.exists() else 0) for k, p in stamps.items()}
        if all(c >= crashes + 1 for c in counts.values()):
            break
        time.sleep(0.05)
    else:
        raise BenchError(f"the crashing apps started {counts} times, wanted {crashes + 1} each")
    for t in tools:
        _, rows = t.rows()
        ev = t.events("crasher") if isinstance(t, Corral) else None
        t.cli("delete", "all")
        t.wait_rows("list empty", empty, 30)
        gaps, uptimes = parse_crash_log(stamps[t.name])
        gaps = gaps[:crashes]
        out[t.name] = {"app_side": summary(gaps), "uptimes": [round(u, 3) for u in uptimes[:crashes]],
                       "restarts_listed": [r.get("restarts") for r in rows]}
        if ev is not None:
            out[t.name]["events"] = summary(events_gaps(ev)[:crashes])
        log(f"crash gap: {t.name} median {out[t.name]['app_side']['median'] * 1000:.1f} ms over {len(gaps)} crashes")
    return out


def corral_ls_breakdown(corral: Corral, work: Path, marker: str, n: int) -> dict[str, Any]:
    """Where the time of `corral ls --json` goes (10 apps running): interpreter, site (the venv's
    .pth files, incl. the editable-install finder), corral's CLI imports, the whole command, and
    the daemon's answer alone (one RPC from this already-running process)."""
    env = corral.env
    cfg = corral.write_config(work / "ls-diag", idle_apps("ls", 10, marker))
    corral.cli("start", str(cfg))
    corral.wait_rows("10 apps online", all_status({f"ls-{i:02d}" for i in range(10)}, "online"), 30)
    out: dict[str, Any] = {}
    for key, cmd in (
        ("python -S -c pass (interpreter, no site)", [PY, "-S", "-c", "pass"]),
        ("python -c pass (+ site and .pth files)", [PY, "-c", "pass"]),
        ("python -c 'import corral.cli.main' (+ CLI imports)", [PY, "-c", "import corral.cli.main"]),
        ("corral ls --json (whole command)", [*corral_cli(), "ls", "--json"]),
    ):
        out[key] = summary([run(cmd, env, corral.clock.cap(30))[0] for _ in range(n)])
    try:
        sys.path.insert(0, str(ROOT))
        from corral.control.client import Client
        from corral.paths import Home

        times = []
        for _ in range(n):
            client = Client(Home(str(corral.home)), autostart=False)
            t0 = time.perf_counter()
            rows = client.call("ls")
            times.append(time.perf_counter() - t0)
            client.close()
            assert len(rows) == 10
        out["daemon answer to ls (connect + RPC, in-process)"] = summary(times)
    except Exception as exc:  # noqa: BLE001 - a diagnostic only
        out["daemon answer to ls (connect + RPC, in-process)"] = {"error": repr(exc)}
    cp = subprocess.run([PY, "-X", "importtime", "-c", "import corral.cli.main"], env=env,
                        capture_output=True, timeout=corral.clock.cap(30))
    top = []
    for line in cp.stderr.decode().splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            name = parts[2].rstrip()
            depth = (len(name) - len(name.lstrip())) // 2
            if depth <= 2:
                top.append((int(parts[1]), name.strip(), depth))
    out["import_cumulative_us"] = {f"{'  ' * d}{nm}": us for us, nm, d in sorted(top, reverse=True)[:12]}
    corral.cli("delete", "all")
    corral.wait_rows("list empty", empty, 30)
    return out


# -- report ---------------------------------------------------------------------------------------
def fmt_ms(s: float) -> str:
    return f"{s * 1000:.1f} ms"


def fmt_s(s: float) -> str:
    return f"{s:.3f} s"


def fmt_mib(kib: float) -> str:
    return f"{kib / 1024:.1f} MiB"


def build_rows(m: dict[str, Any]) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []

    def add(metric: str, c: str, p: str, ratio: str, goal: str = "—", met: str = "") -> None:
        rows.append({"metric": metric, "corral": c, "pm2": p, "ratio": ratio, "goal": goal, "met": met})

    def yes(ok: bool) -> str:
        return "yes" if ok else "**no**"

    ls = m["ls"]
    for key, label in (("median", "median"), ("p90", "p90")):
        c, p = ls["corral"][key], ls["pm2"][key]
        add(f"`ls` latency, 10 apps, {label} of {ls['corral']['n']} (`corral ls --json` / `pm2 jlist`)",
            fmt_ms(c), fmt_ms(p), f"{c / p:.2f} ({p / c:.1f}× faster)", "corral ≥ 4× faster", yes(p / c >= 4))
    r0 = m["rss"]
    add("daemon RSS, 0 apps", fmt_mib(r0["corral"]), fmt_mib(r0["pm2"]), f"{r0['corral'] / r0['pm2']:.2f}")
    ss = m["start_stop"]
    c50, p50 = max(ss["corral"]["rss_kib_50"]), max(ss["pm2"]["rss_kib_50"])
    add("daemon RSS, 50 apps (max over rounds)", fmt_mib(c50), fmt_mib(p50), f"{c50 / p50:.2f}",
        "corral ≤ 22 MiB (monitoring on)", yes(c50 <= 22 * 1024))
    c, p, b = (ss["corral"]["start_list_s"]["median"], ss["pm2"]["start_list_s"]["median"],
               ss["bare"]["start_exec_s"]["median"])
    add(f"start 50 apps → all online in the tool's list (median of {ss['bare']['start_exec_s']['n']})",
        fmt_s(c), fmt_s(p), f"{c / p:.2f}")
    add(f"start 50 apps vs bare fork/exec ×50 from Python ({fmt_s(b)})", fmt_s(c),
        f"{fmt_s(p)} ({p / b:.1f}× bare)", f"corral/bare = {c / b:.1f}", "corral ≤ 1.4× bare", yes(c / b <= 1.4))
    c, p = ss["corral"]["start_exec_s"]["median"], ss["pm2"]["start_exec_s"]["median"]
    add(f"start 50 apps → all 50 exec'd (seen in /proc; bare {fmt_s(b)})", fmt_s(c), fmt_s(p),
        f"{c / p:.2f} (corral/bare = {c / b:.1f})")
    bc = ss["bare_command"]["start_exec_s"]["median"]
    add(f"start 50 apps as a command → all 50 exec'd, vs a bare fork/exec ×50 command ({fmt_s(bc)})",
        fmt_s(c), f"{fmt_s(p)} ({p / bc:.1f}× bare)", f"corral/bare = {c / bc:.2f}", "corral ≤ 1.4× bare",
        yes(c / bc <= 1.4))
    if "daemon_spawns_s" in ss["corral"]:
        d = ss["corral"]["daemon_spawns_s"]["median"]
        add(f"daemon side: first start → 50th spawn, vs the in-process Popen ×50 loop "
            f"({fmt_s(ss['bare']['popen_loop_s']['median'])})", fmt_s(d), "",
            f"corral/bare = {d / ss['bare']['popen_loop_s']['median']:.1f}")
    c, p, b = (ss["corral"]["stop_list_s"]["median"], ss["pm2"]["stop_list_s"]["median"],
               ss["bare"]["stop_gone_s"]["median"])
    add(f"stop 50 apps → all stopped in the tool's list (bare SIGTERM ×50 + reap {fmt_s(b)})",
        fmt_s(c), fmt_s(p), f"{c / p:.2f}")
    cr = m["crash"]
    c, p = cr["corral"]["app_side"]["median"], cr["pm2"]["app_side"]["median"]
    f = cr["bare_spawn_to_app_start"]["median"]
    add(f"crash → restart gap, app-side stamps, median of {cr['corral']['app_side']['n']} "
        f"(floor: bare spawn of the app {fmt_ms(f)})", fmt_ms(c), fmt_ms(p), f"{c / p:.2f}",
        "corral ≤ PM2", yes(c <= p))
    c, p = cr["corral"]["app_side"]["max"], cr["pm2"]["app_side"]["max"]
    add("crash → restart gap, app-side stamps, worst", fmt_ms(c), fmt_ms(p), f"{c / p:.2f}")
    if "events" in cr["corral"]:
        add("crash → restart gap from `corral events` (exit → spawn)", fmt_ms(cr["corral"]["events"]["median"]),
            "—", "—")
    return rows


def diagnostics(m: dict[str, Any]) -> list[str]:
    out = ["Where corral's time goes (medians):", ""]
    bd = m.get("corral_ls_breakdown", {})
    steps = [f"{k}: {fmt_ms(v['median'])}" for k, v in bd.items() if isinstance(v, dict) and "median" in v]
    if steps:
        out.append("- `ls`, step by step: " + "; ".join(steps) + ".")
    imp = bd.get("import_cumulative_us")
    if imp:
        out.append("- biggest imports of `corral.cli.main` (cumulative, one run): " + ", ".join(
            f"{k.strip()} {v / 1000:.1f} ms" for k, v in list(imp.items())[:8]) + ".")
    ss = m["start_stop"]["corral"]
    if "cli_until_daemon_acts_s" in ss:
        val = m.get("corral_validate_50", {}).get("median")
        out.append(
            f"- `start` of 50: {fmt_ms(ss['cli_until_daemon_acts_s']['median'])} from the command to the "
            f"daemon's first `start` event (CLI start-up + loading the 50-app TOML"
            + (f"; `corral validate` of that file alone takes {fmt_ms(val)}" if val else "")
            + (f", and `python -c 'import corral.config.load'` {fmt_ms(m['corral_config_import']['median'])}"
               if "corral_config_import" in m else "")
            + f"), then {fmt_ms(ss['daemon_spawns_s']['median'])} for the daemon to spawn all 50; "
            f"the command returns after {fmt_ms(ss['start_cmd_s']['median'])}, the 50 have exec'd after "
            f"{fmt_ms(ss['start_exec_s']['median'])}, and one more `corral ls` confirms them at "
            f"{fmt_ms(ss['start_list_s']['median'])}.")
    r = m["rss"]["corral"], max(m["start_stop"]["corral"]["rss_kib_50"]), m["rss_end"]["corral"]
    p = m["rss"]["pm2"], max(m["start_stop"]["pm2"]["rss_kib_50"]), m["rss_end"]["pm2"]
    out.append(f"- daemon RSS over the run (0 apps at start / max with 50 / 0 apps at the end): corral "
               f"{' / '.join(fmt_mib(x) for x in r)}; PM2 {' / '.join(fmt_mib(x) for x in p)}.")
    return out


def markdown(rows: list[dict[str, str]], ctx: dict[str, Any], meta: dict[str, Any], m: dict[str, Any]) -> str:
    out = ["| metric | corral | PM2 | ratio (corral/PM2) | goal | met? |", "|---|---|---|---|---|---|"]
    out += [f"| {r['metric']} | {r['corral']} | {r['pm2']} | {r['ratio']} | {r['goal']} | {r['met']} |" for r in rows]
    out.append("")
    out.append("Context (not goals): " + "; ".join(
        f"{k} {fmt_ms(v)}" for k, v in ctx.items()) + ".")
    out.append("")
    out += diagnostics(m)
    out.append("")
    out.append(f"Machine: {meta['cpus']} CPU(s), {meta['platform']}; Python {meta['python']}, node {meta['node']}, "
               f"PM2 {meta['pm2']}, corral {meta['corral']} at {meta['corral_git']}. Load average {meta['loadavg_before'][0]:.2f} before, "
               f"{meta['loadavg_after'][0]:.2f} after; run took {meta['seconds']:.0f} s "
               f"({meta['date']}).")
    return "\n".join(out) + "\n"


# -- main -----------------------------------------------------------------------------------------
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3, help="start/stop rounds of 50 apps per tool")
    ap.add_argument("--ls-calls", type=int, default=20)
    ap.add_argument("--crashes", type=int, default=8)
    ap.add_argument("--crash-uptime", type=float, default=2.0)
    ap.add_argument("--settle", type=float, default=1.0, help="seconds before reading RSS")
    ap.add_argument("--max-seconds", type=float, default=280.0, help="deadline of the whole run")
    ap.add_argument("--state", type=Path, default=DEFAULT_STATE, help="where to note what to clean up")
    ap.add_argument("--out", type=Path, default=RESULTS, help="folder for core-latest.json/.md")
    ap.add_argument("--keep", action="store_true", help="keep the temporary homes (logs) for a look")
    ap.add_argument("--cleanup", type=Path, metavar="STATE", help="only clean up after the run noted in STATE")
    args = ap.parse_args()

    if args.cleanup is not None:
        if args.cleanup.exists():
            cleanup(json.loads(args.cleanup.read_text()))
            args.cleanup.unlink(missing_ok=True)
        return 0
    if not PM2.exists():
        print(f"core.py: {PM2} is missing: run bench/run.sh (it installs the pinned PM2)", file=sys.stderr)
        return 2

    started = time.monotonic()
    clock = Clock(args.max_seconds)
    tag = f"{os.getpid()}-{random.randrange(10**9)}"
    marker = f"3600.{random.randrange(10**5, 10**6)}"
    tmp = Path(tempfile.mkdtemp(prefix="corral-bench-"))
    corral_home, pm2_home, work = tmp / "corral", tmp / "pm2", tmp / "work"
    for d in (pm2_home, work):
        d.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("CORRAL_HOME", "PM2_HOME")}
    env.update({"CORRAL_HOME": str(corral_home), "PM2_HOME": str(pm2_home), TAG_VAR: tag})
    state = {"tag": tag, "marker": marker, "tmp": str(tmp), "corral_home": str(corral_home),
             "pm2_home": str(pm2_home), "env": {"CORRAL_HOME": str(corral_home), "PM2_HOME": str(pm2_home)},
             "keep": args.keep}
    save_state(args.state, state)

    exit_on_signals()

    def log(msg: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {msg}", file=sys.stderr, flush=True)

    corral, pm2 = Corral(corral_home, env, clock), PM2Tool(pm2_home, env, clock)
    tools: list[Tool] = [corral, pm2]
    status = 1
    leftovers: list[int] = []
    try:
        load_before = os.getloadavg()
        ctx = {
            "python start-up (`python -c pass`)": median_of([PY, "-c", "pass"], env, 5, clock)["median"],
            "node start-up (`node -e 0`)": median_of(["node", "-e", "0"], env, 5, clock)["median"],
        }
        ping = {}
        for t in tools:
            ping[t.name], _ = t.cli("ping")
            log(f"{t.name} daemon up (pid {t.daemon_pid()}), first ping {ping[t.name]:.3f} s")
        ctx["`corral ping` starting the daemon"] = ping["corral"]
        ctx["`pm2 ping` starting the daemon"] = ping["pm2"]
        time.sleep(args.settle)
        m: dict[str, Any] = {"rss": {t.name: rss_kib(t.daemon_pid()) for t in tools}}
        m["daemon_pids"] = {t.name: t.daemon_pid() for t in tools}
        state["daemon_pids"] = m["daemon_pids"]
        save_state(args.state, state)
        log("RSS with 0 apps: " + ", ".join(f"{k} {fmt_mib(v)}" for k, v in m["rss"].items()))
        m["ls"] = measure_ls(tools, work, marker, args.ls_calls, 2, log)
        m["start_stop"] = measure_start_stop(tools, work, marker, args.rounds, args.settle, env, clock, log)
        m["crash"] = measure_crash(tools, work, args.crashes, args.crash_uptime, clock, env, log)
        m["corral_ls_breakdown"] = corral_ls_breakdown(corral, work, marker, 10)
        m["corral_validate_50"] = median_of([*corral_cli(), "validate", str(work / "idle50-corral.toml")],
                                            env, 5, clock)
        m["corral_config_import"] = median_of([PY, "-c", "import corral.config.load"], env, 5, clock)
        log("corral diagnostics done")
        m["rss_end"] = {t.name: rss_kib(t.daemon_pid()) for t in tools}
        for t in tools:
            if t.daemon_pid() != m["daemon_pids"][t.name]:
                raise BenchError(f"{t.name}: the daemon changed pid during the run")
        kill, lag = {}, {}
        for t in tools:
            pid = t.daemon_pid()
            kill[t.name], _ = t.cli("kill")
            lag[t.name] = time_until_gone(pid, 5.0)
        ctx["`corral kill` (0 apps)"] = kill["corral"]
        ctx["`pm2 kill` (0 apps)"] = kill["pm2"]
        ctx["corral daemon still alive after `corral kill` returned"] = lag["corral"]
        ctx["PM2 God daemon still alive after `pm2 kill` returned"] = lag["pm2"]
        leftovers = cleanup(state, quiet=True)
        _, nodev = run(["node", "--version"], env, 30)
        meta = {
            "date": time.strftime("%Y-%m-%d %H:%M:%S %z"), "cpus": os.cpu_count(),
            "platform": platform.platform(), "python": platform.python_version(),
            "node": nodev.stdout.decode().strip(),
            "pm2": json.loads((BENCH / "node_modules" / "pm2" / "package.json").read_text())["version"],
            "corral": _corral_version(), "corral_git": _git_head(), "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
            "seconds": time.monotonic() - started,
            "settings": {"rounds": args.rounds, "ls_calls": args.ls_calls, "crashes": args.crashes,
                         "crash_uptime_s": args.crash_uptime, "settle_s": args.settle},
            "leftover_processes_killed_by_cleanup": leftovers,
        }
        rows = build_rows(m)
        md = markdown(rows, ctx, meta, m)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "core-latest.json").write_text(json.dumps(
            {"meta": meta, "table": rows, "context_s": ctx, "measurements": m}, indent=1) + "\n")
        (args.out / "core-latest.md").write_text(md)
        if args.out.resolve() == RESULTS.resolve():
            update_readme(md)
        print(md)
        if leftovers:
            print(f"warning: cleanup had to SIGKILL {len(leftovers)} process(es) after `kill`", file=sys.stderr)
        status = 0
    except BenchError as exc:
        print(f"core.py: FAILED: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        print("core.py: interrupted, cleaning up", file=sys.stderr)
        status = 130
    except Exception:  # noqa: BLE001 - report, then clean up like any failure
        import traceback

        traceback.print_exc()
        print("core.py: FAILED (unexpected error above), cleaning up", file=sys.stderr)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        cleanup(state)
        args.state.unlink(missing_ok=True)
        log("done")
    return status


def update_readme(md: str) -> None:
    """Put the latest table into bench/README.md, between its two markers."""
    readme = BENCH / "README.md"
    begin, end = "<!-- latest-results:begin -->", "<!-- latest-results:end -->"
    try:
        text = readme.read_text()
    except OSError:
        return
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        tail = rest.split(end, 1)[1]
        readme.write_text(f"{head}{begin}\n{md}{end}{tail}")


def _git_head() -> str:
    """The commit measured, with "+changes" when corral's files differ from it (others may be
    editing the tree; the venv's install is editable, so the working tree is what runs)."""
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "corral", "pyproject.toml"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return head + ("+changes" if dirty else "") if head else "?"
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def _corral_version() -> str:
    try:
        sys.path.insert(0, str(ROOT))
        import corral

        return getattr(corral, "__version__", "?")
    except Exception:  # noqa: BLE001 - only for the report
        return "?"


if __name__ == "__main__":
    sys.exit(main())
