"""Reload under load (corral vs PM2 cluster mode vs gunicorn) and 1 → 2 instance scaling, with wrk,
on this machine, in one run.

Run it through ``bench/run.sh reload`` (installs the pinned PM2 first and always cleans up).
Directly:

    .venv/bin/python bench/reload.py [--seconds 12] [--reload-at 4] [--only corral-plain,pm2]
    .venv/bin/python bench/reload.py --cleanup bench/.work/reload-state.json   # kill what a run left

Part 1, reload under load: for each target, ``wrk -t2 -c32 -d12s --latency`` twice, once steady
and once with a reload triggered 4 s in (``corral reload web`` / ``pm2 reload web`` /
``kill -HUP`` to gunicorn's master); every app boots in 1 s.  Part 2, scaling: requests/s of the
corral app (uvicorn) burning 200 µs of CPU per request with 1 and with 2 instances, with the CPU
time of the servers, of wrk and of everything else on the machine, and requests per pid.

wrk comes from the Debian package (installed with apt-get when missing); load goes to 127.0.0.1
only.  Both daemons get fresh homes under a temporary folder, and every process started carries
``CORRAL_BENCH_TAG=<tag>`` in its environment, so cleanup (``core.cleanup``) finds exactly those
processes, even after a crash of this script.  See bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
from core import (  # noqa: E402 - bench/ is not a package
    PM2, PY, RESULTS, TAG_VAR, BenchError, Clock, _corral_version, _git_head, all_pids, cleanup,
    corral_cli, has_tag, read_cmdline, run, save_state,
)

BENCH = Path(__file__).resolve().parent
APPS = BENCH / "reload_apps"
LUA = APPS / "report.lua"
DEFAULT_STATE = BENCH / ".work" / "reload-state.json"
VENV_BIN = Path(PY).parent
UVICORN = VENV_BIN / "uvicorn"
GUNICORN = VENV_BIN / "gunicorn"
TICK = os.sysconf("SC_CLK_TCK")
NCPU = os.cpu_count() or 1
QUIET = 0.15  # cores used by other processes under which the machine counts as quiet
WRK_TIMEOUT = "2s"  # wrk's default: a request slower than this counts as a timeout error


class Log:
    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def __call__(self, msg: str) -> None:
        print(f"[{time.monotonic() - self.t0:6.1f}s] {msg}", file=sys.stderr, flush=True)


# -- wrk ------------------------------------------------------------------------------------------
def ensure_wrk(log: Log) -> str:
    """wrk from the Debian package: apt-get install (after apt-get update if that fails)."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise BenchError("wrk is missing: install the Debian package (apt-get install -y wrk)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmds in ([["apt-get", "install", "-y", "wrk"]],
                 [["apt-get", "update"], ["apt-get", "install", "-y", "wrk"]]):
        log(f"installing wrk: {' ; '.join(' '.join(c) for c in cmds)}")
        ok = True
        for cmd in cmds:
            try:
                cp = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=300)
            except subprocess.TimeoutExpired:
                ok = False
                break
            if cp.returncode != 0:
                ok = False
                break
        if ok and shutil.which("wrk"):
            return shutil.which("wrk")  # type: ignore[return-value]
    raise BenchError("could not install wrk with apt-get")


def cpu_busy_s() -> tuple[float, float]:
    """A clock for the machine's busy time: (CPU count × monotonic seconds − idle − iowait), and
    the irq + softirq + steal seconds (kernel work no process is charged for), from /proc/stat.

    Busy is taken as "not idle" because /proc/stat's user and system columns are sampled at timer
    ticks, which miss short bursts on a tickless kernel (a server answering 700 req/s in 100 µs
    bursts), while idle time is measured exactly; only differences of two readings mean anything."""
    with open("/proc/stat") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    now = time.monotonic()
    user, nice, system, idle, iowait, irq, softirq, steal = (parts + [0] * 8)[:8]
    return NCPU * now - (idle + iowait) / TICK, (irq + softirq + steal) / TICK


def others_by_process(tag: str) -> dict[int, tuple[str, float]]:
    """pid -> (command, CPU seconds) of the processes that are not this run's."""
    out: dict[int, tuple[str, float]] = {}
    me = os.getpid()
    for pid in all_pids():
        if pid == me or has_tag(pid, tag):
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                text = f.read()
            fields = text.rsplit(")", 1)[1].split()
            cmd = read_cmdline(pid).replace(b"\0", b" ").decode(errors="replace").strip()[:80]
            out[pid] = (cmd or text[text.index("(") + 1:text.rindex(")")], (int(fields[11]) + int(fields[12])) / TICK)
        except (OSError, IndexError, ValueError):
            pass
    return out


def proc_cpu_s(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK
    except (OSError, IndexError, ValueError):
        return None


def mine_cpu_s(tag: str) -> float:
    """CPU seconds of this run's processes: this script and the children it has reaped (wrk, CLI
    calls), plus every live process carrying the run's tag with the children it has reaped (the
    daemons' instances, gunicorn's workers).  A process's time moves into its parent's cutime
    when reaped, so a difference of two readings counts each process once."""
    t = os.times()
    total = t.user + t.system + t.children_user + t.children_system
    me = os.getpid()
    for pid in all_pids():
        if pid != me and has_tag(pid, tag):
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                total += sum(int(x) for x in fields[11:15]) / TICK
            except (OSError, IndexError, ValueError):
                pass
    return total


def wait_quiet(env: dict[str, str], clock: Clock, limit: float, log: Log, what: str) -> dict[str, float]:
    """Wait, at most LIMIT seconds, until processes that are not this run's use less than QUIET
    cores over a 1 s window (the machine is shared: other sessions run test suites and benchmarks)."""
    tag = env[TAG_VAR]
    t0 = time.monotonic()
    while True:
        m0, (b0, _), w0 = mine_cpu_s(tag), cpu_busy_s(), time.monotonic()
        time.sleep(1.0)
        m1, (b1, _), w1 = mine_cpu_s(tag), cpu_busy_s(), time.monotonic()
        load = ((b1 - b0) - (m1 - m0)) / (w1 - w0)
        if load < QUIET or time.monotonic() - t0 + 1 > clock.cap(limit):
            break
    waited = time.monotonic() - t0
    if load >= QUIET:
        log(f"{what}: other load {load:.2f} cores after waiting {waited:.0f} s for a quiet machine; measuring anyway")
    return {"waited_s": round(waited, 1), "other_load_before": round(load, 3)}


def read_counts(count_dir: Path | None) -> dict[int, int]:
    out: dict[int, int] = {}
    if count_dir is None or not count_dir.is_dir():
        return out
    for p in count_dir.iterdir():
        if p.name.isdigit():
            try:
                out[int(p.name)] = int(p.read_text() or 0)
            except (OSError, ValueError):
                pass
    return out


class Prober:
    """One new connection every 50 ms (GET /, 5 s timeout), alongside wrk: a timeline of latency,
    failures and which pid answered, to see when a reload stalls or drops anything."""

    def __init__(self, port: int, gap: float = 0.05) -> None:
        self.port, self.gap = port, gap
        self.samples: list[tuple[float, float, str, int | None]] = []  # (t, latency s, outcome, pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self.t0 = 0.0

    def start(self, t0: float) -> None:
        self.t0 = t0
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _loop(self) -> None:
        while not self._stop.is_set():
            t = time.perf_counter()
            pid = None
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            try:
                conn.request("GET", "/probe")
                resp = conn.getresponse()
                body = resp.read().decode(errors="replace")
                outcome = "ok" if resp.status == 200 else f"status {resp.status}"
                if body.startswith("pid="):
                    pid = int(body.split()[0][4:])
            except ConnectionRefusedError:
                outcome = "refused"
            except ConnectionResetError:
                outcome = "reset"
            except TimeoutError:
                outcome = "timeout"
            except (OSError, http.client.HTTPException, ValueError) as exc:
                outcome = type(exc).__name__
            finally:
                conn.close()
            done = time.perf_counter()
            self.samples.append((t - self.t0, done - t, outcome, pid))
            self._stop.wait(max(0.0, self.gap - (done - t)))

    def summary(self, old: set[int] | None = None, new: set[int] | None = None) -> dict[str, Any]:
        lat = sorted(s[1] for s in self.samples if s[2] == "ok")
        fails: dict[str, int] = {}
        for s in self.samples:
            if s[2] != "ok":
                fails[s[2]] = fails.get(s[2], 0) + 1
        worst = max(self.samples, key=lambda s: s[1], default=None)
        out: dict[str, Any] = {
            "n": len(self.samples), "failures": fails,
            "max_ms": round(worst[1] * 1000, 1) if worst else None,
            "max_at_s": round(worst[0], 2) if worst else None,
            "p50_ms": round(lat[len(lat) // 2] * 1000, 2) if lat else None,
            "slow_over_250ms": [(round(s[0], 2), round(s[1] * 1000)) for s in self.samples if s[1] > 0.25][:40],
            "failed": [(round(s[0], 3), round(s[1] * 1000, 1), s[2]) for s in self.samples if s[2] != "ok"][:40],
        }
        if old is not None and new is not None:
            old_t = [s[0] + s[1] for s in self.samples if s[3] in old]
            new_t = [s[0] for s in self.samples if s[3] in new]
            out["last_answer_from_old_s"] = round(max(old_t), 2) if old_t else None
            out["first_answer_from_new_s"] = round(min(new_t), 2) if new_t else None
        return out


def parse_wrk(text: str) -> dict[str, Any]:
    line = next((ln for ln in text.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if line is None:
        raise BenchError(f"wrk printed no result: {text[-800:]}")
    res = json.loads(line[len("BENCH_JSON "):])
    res["rps"] = res["requests"] / (res["duration_us"] / 1e6)
    # the same counts as printed by wrk itself, kept for cross-checking
    for ln in text.splitlines():
        ln = ln.strip()
        if ln.startswith("Socket errors:"):
            res["text_socket_errors"] = ln
        elif ln.startswith("Non-2xx or 3xx responses:"):
            res["text_non_2xx"] = int(ln.split(":")[1])
    e = res["errors"]
    res["errors_total"] = e["connect"] + e["read"] + e["write"] + e["timeout"] + e["status"]
    return res


def wrk_run(wrk: str, port: int, threads: int, conns: int, seconds: float, env: dict[str, str], clock: Clock,
            out: Path, action: Callable[[], Any] | None = None, at: float = 4.0, wrk_cpus: str | None = None,
            server_pids: list[int] | None = None, count_dir: Path | None = None, probe: bool = True,
            old_new: Callable[[], tuple[set[int], set[int]]] | None = None) -> dict[str, Any]:
    """One wrk run (with --latency and report.lua); ACTION is called AT seconds in.  Also: the
    prober's timeline, CPU seconds of wrk (rusage), of SERVER_PIDS (/proc) and of the machine."""
    cmd = [wrk, f"-t{threads}", f"-c{conns}", f"-d{seconds:g}s", "--latency", "--timeout", WRK_TIMEOUT,
           "-s", str(LUA), f"http://127.0.0.1:{port}/"]
    if wrk_cpus is not None:
        cmd = ["taskset", "-c", wrk_cpus, *cmd]
    server_pids = server_pids or []
    tag = env[TAG_VAR]
    mine0 = mine_cpu_s(tag)
    (busy0, kern0), oth0 = cpu_busy_s(), others_by_process(tag)
    srv0 = {pid: proc_cpu_s(pid) for pid in server_pids}
    counts0 = read_counts(count_dir)
    prober = Prober(port) if probe else None
    with open(out, "wb") as f:
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT, env=env)
    t0 = time.perf_counter()
    if prober:
        prober.start(t0)
    result: dict[str, Any] = {"cmd": " ".join(cmd)}
    try:
        if action is not None:
            time.sleep(max(0.0, t0 + at - time.perf_counter()))
            a0 = time.perf_counter()
            result["action_output"] = action()
            result["action_at_s"] = round(a0 - t0, 3)
            result["action_took_s"] = round(time.perf_counter() - a0, 3)
        deadline = time.monotonic() + clock.cap(seconds + 30)
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                raise BenchError(f"wrk did not finish within {seconds + 30:.0f} s")
            time.sleep(0.02)
        p.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
    finally:
        if p.returncode is None:
            p.kill()
            p.wait(10)
        if prober:
            prober.stop()
    (busy1, kern1), oth1 = cpu_busy_s(), others_by_process(tag)
    busy, kern = busy1 - busy0, kern1 - kern0
    others = busy - (mine_cpu_s(tag) - mine0)
    top = sorted(((c - oth0[pid][1], pid, cmd) for pid, (cmd, c) in oth1.items() if pid in oth0), reverse=True)[:4]
    text = out.read_text(errors="replace")
    if p.returncode != 0:
        raise BenchError(f"wrk exited with status {p.returncode}: {text[-600:]}")
    result.update(parse_wrk(text))
    result["wall_s"] = round(wall, 3)
    result["text"] = text
    wrk_cpu = ru.ru_utime + ru.ru_stime
    srv = sum((proc_cpu_s(pid) or 0.0) - (c0 or 0.0) for pid, c0 in srv0.items())
    result["cpu_cores"] = {"machine": round(busy / wall, 3), "wrk": round(wrk_cpu / wall, 3),
                           "servers": round(srv / wall, 3) if server_pids else None,
                           "others": round(others / wall, 3),
                           "others_irq_softirq_steal": round(kern / wall, 3),
                           "others_top": [[pid, cmd, round(c / wall, 3)] for c, pid, cmd in top if c > 0],
                           "others_short_lived": round((others - kern - sum(max(c, 0) for c, _, _ in top)) / wall, 3)}
    if count_dir is not None:
        time.sleep(0.5)  # the apps write their counts every 0.2 s
        counts1 = read_counts(count_dir)
        result["requests_by_pid"] = {str(pid): counts1[pid] - counts0.get(pid, 0) for pid in sorted(counts1)
                                     if counts1[pid] - counts0.get(pid, 0) > 0}
    if prober:
        on = old_new() if old_new else (None, None)
        result["probe"] = prober.summary(*on)
    return result


# -- the targets ----------------------------------------------------------------------------------
def http_pids(port: int, want: int, timeout: float) -> set[int]:
    """GET / on new connections until WANT distinct pids answered."""
    seen: set[int] = set()
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3)
            conn.request("GET", "/")
            body = conn.getresponse().read().decode()
            conn.close()
            pid = int(body.split()[0][4:])
            seen.add(pid)
            if len(seen) >= want:
                return seen
        except (OSError, ValueError, IndexError, http.client.HTTPException) as exc:
            last = repr(exc)
            time.sleep(0.05)
    raise BenchError(f"port {port}: {len(seen)} of {want} server processes answered within {timeout:.0f} s {last}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Target:
    """One server setup of part 1: start it, list its server pids, reload it, stop it."""

    key = ""
    label = ""
    readiness = ""
    reload_cmd = ""
    port = 0

    def start(self) -> None:
        raise NotImplementedError

    def pids(self) -> set[int]:
        raise NotImplementedError

    def reload(self) -> str:
        """Trigger the reload; return what it printed (or a summary) once it is done."""
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError


class CorralTarget(Target):
    def __init__(self, key: str, label: str, readiness: str, toml: str, env: dict[str, str], clock: Clock,
                 work: Path, instances: int = 2, name: str = "web") -> None:
        self.key, self.label, self.readiness, self.toml = key, label, readiness, toml
        self.env, self.clock, self.work, self.instances, self.name = env, clock, work, instances, name
        self.reload_cmd = f"corral reload {name}"

    def cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return run([*corral_cli(), *args], self.env, self.clock.cap(timeout))[1]

    def rows(self) -> list[dict[str, Any]]:
        return [r for r in json.loads(self.cli("ls", "--json").stdout) if r["name"] == self.name]

    file_name = ""  # the ecosystem file's name (its extension says its format); default KEY.toml

    def start(self) -> None:
        path = self.work / (self.file_name or f"{self.key}.toml")
        path.write_text(self.toml)
        self.cli("start", str(path))
        deadline = time.monotonic() + self.clock.cap(40)
        rows: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            rows = self.rows()
            if len(rows) == self.instances and all(r["status"] == "online" for r in rows):
                break
            time.sleep(0.1)
        else:
            raise BenchError(f"{self.key}: not {self.instances} instances online within 40 s: "
                             f"{[r['status'] for r in rows]}")
        info = json.loads(self.cli("describe", self.name, "--json").stdout)
        self.port = int(info["listen"][0].rsplit(":", 1)[1])
        http_pids(self.port, self.instances, self.clock.cap(20))

    def pids(self) -> set[int]:
        return {r["pid"] for r in self.rows() if r["status"] == "online" and r["pid"]}

    def instance_pids(self) -> dict[int, int]:
        return {r["instance"]: r["pid"] for r in self.rows() if r["pid"]}

    def events_since(self, t0: float) -> list[tuple[float, int, str, str]]:
        """corral's own events from wall time T0 on: (seconds after T0, instance, kind, message)."""
        evs = json.loads(self.cli("events", self.name, "--lines", "200", "--json").stdout)
        return [(round(e["ts"] - t0, 3), e.get("instance"), e["kind"], e.get("message", ""))
                for e in evs if e["ts"] >= t0]

    def reload(self) -> str:
        self.reload_wall = time.time()
        cp = run([*corral_cli(), "reload", self.name], self.env, self.clock.cap(90), check=False)[1]
        out = (cp.stdout + cp.stderr).decode(errors="replace").strip()
        if cp.returncode != 0:
            raise BenchError(f"corral reload {self.name}: exit status {cp.returncode}: {out}")
        return out

    def stop(self) -> None:
        self.cli("delete", self.name)
        deadline = time.monotonic() + self.clock.cap(30)
        while self.rows() and time.monotonic() < deadline:
            time.sleep(0.1)


class PM2Target(Target):
    key = "pm2"
    label = "PM2 cluster mode · Node http"
    readiness = "'listening' event"
    reload_cmd = "pm2 reload web"

    def __init__(self, env: dict[str, str], clock: Clock, work: Path) -> None:
        self.env, self.clock, self.work = env, clock, work

    def cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return run([str(PM2), *args], self.env, self.clock.cap(timeout))[1]

    def rows(self) -> list[dict[str, Any]]:
        text = self.cli("jlist").stdout.decode(errors="replace")
        return [p for p in json.loads(text[text.find("["):]) if p["name"] == "web"]

    def start(self) -> None:
        self.port = free_port()
        path = self.work / "pm2-web.json"
        path.write_text(json.dumps({"apps": [{
            "name": "web", "script": str(APPS / "node_app.js"), "exec_mode": "cluster", "instances": 2,
            "env": {"PORT": str(self.port), "BOOT_DELAY": "1"}}]}))
        self.cli("start", str(path))
        deadline = time.monotonic() + self.clock.cap(40)
        while time.monotonic() < deadline:
            rows = self.rows()
            if len(rows) == 2 and all(r["pm2_env"]["status"] == "online" for r in rows):
                break
            time.sleep(0.1)
        else:
            raise BenchError("pm2: not 2 instances online within 40 s")
        http_pids(self.port, 2, self.clock.cap(20))

    def pids(self) -> set[int]:
        return {r["pid"] for r in self.rows() if r["pm2_env"]["status"] == "online" and r["pid"]}

    def reload(self) -> str:
        cp = run([str(PM2), "reload", "web"], self.env, self.clock.cap(90), check=False)[1]
        out = (cp.stdout + cp.stderr).decode(errors="replace").strip()
        if cp.returncode != 0:
            raise BenchError(f"pm2 reload web: exit status {cp.returncode}: {out[-600:]}")
        return "\n".join(ln for ln in out.splitlines() if "[PM2]" in ln)

    def stop(self) -> None:
        self.cli("delete", "all")


class CorralNodeTarget(CorralTarget):
    """PM2's own cluster-mode file for node_app.js (the port only in its env, as PM2 runs it), run
    by corral: its preload makes listen(PORT) use corral's per-slot sockets.  One key more than the
    PM2 file: stop_signal = SIGINT, PM2's stop signal, which node_app.js handles."""

    file_name = "ecosystem.config.json"

    def __init__(self, env: dict[str, str], clock: Clock, work: Path) -> None:
        port = free_port()
        pm2_file = {"apps": [{"name": "web", "script": str(APPS / "node_app.js"), "exec_mode": "cluster",
                              "instances": 2, "stop_signal": "SIGINT",
                              "env": {"PORT": str(port), "BOOT_DELAY": "1"}}]}
        super().__init__("corral-node", "corral · PM2's cluster-mode file, Node http", "'listening' (preload)",
                         json.dumps(pm2_file), env, clock, work)


def children(ppid: int) -> set[int]:
    out = set()
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == ppid:
                        out.add(int(name))
            except (OSError, ValueError, IndexError):
                pass
    return out


class GunicornTarget(Target):
    key = "gunicorn"
    label = "gunicorn · 2 gthread workers (4 threads)"
    readiness = "none (master forks, worker imports the app)"
    reload_cmd = "kill -HUP <master>"

    def __init__(self, env: dict[str, str], clock: Clock, work: Path) -> None:
        self.env, self.clock, self.work = env, clock, work
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.port = free_port()
        self.log_file = open(self.work / "gunicorn.log", "ab")
        self.proc = subprocess.Popen(
            [str(GUNICORN), "-w", "2", "-k", "gthread", "--threads", "4", "-b", f"127.0.0.1:{self.port}",
             "--chdir", str(APPS), "--graceful-timeout", "5", "--log-level", "info", "wsgi_app:app"],
            env={**self.env, "BOOT_DELAY": "1"}, stdin=subprocess.DEVNULL, stdout=self.log_file,
            stderr=subprocess.STDOUT, start_new_session=True)
        http_pids(self.port, 2, self.clock.cap(30))

    def pids(self) -> set[int]:
        return children(self.proc.pid) if self.proc else set()

    def reload(self) -> str:
        """HUP; returns when the old workers have exited and two new ones exist."""
        assert self.proc is not None
        old = self.pids()
        t0 = time.perf_counter()
        os.kill(self.proc.pid, signal.SIGHUP)
        deadline = time.monotonic() + self.clock.cap(30)
        while time.monotonic() < deadline:
            now = self.pids()
            if not now & old and len(now) == 2:
                return f"old workers {sorted(old)} gone, new {sorted(now)} after {time.perf_counter() - t0:.2f} s"
            time.sleep(0.01)
        raise BenchError("gunicorn: the old workers were not replaced within 30 s")

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            os.kill(self.proc.pid, signal.SIGTERM)
            self.proc.wait(self.clock.cap(15))
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        except ProcessLookupError:
            pass
        self.proc = None
        self.log_file.close()


class BareRollingTarget(Target):
    """Control, no corral: the bench binds one SO_REUSEPORT socket per slot (+ TCP_NODELAY), runs
    uvicorn --fd 3 on each, and reloads by hand the way corral does with listen_timeout = "3s":
    per slot, start the new process on the slot's socket, wait 3 s, SIGTERM the old one, wait
    for it to exit.  What uvicorn itself does to connections when it stops."""

    key = "uvicorn-alone"
    label = "control, no corral: uvicorn --fd 3, the same rolling replacement done by the bench"
    readiness = "3 s wait (as listen_timeout)"
    reload_cmd = "start new, wait 3 s, SIGTERM old, per slot"

    def __init__(self, env: dict[str, str], clock: Clock, work: Path) -> None:
        self.env, self.clock, self.work = env, clock, work
        self.socks: list[socket.socket] = []
        self.procs: list[subprocess.Popen] = []

    def _spawn(self, slot: int) -> subprocess.Popen:
        fd = self.socks[slot].fileno()
        return subprocess.Popen(
            [PY, "-c", "import os,sys; os.dup2(int(sys.argv[1]), 3); os.execv(sys.argv[2], sys.argv[2:])",
             str(fd), str(UVICORN), "asgi_app:app", "--fd", "3", "--no-access-log", "--log-level", "warning"],
            cwd=str(APPS), env={**self.env, "BOOT_DELAY": "1", "CORRAL_INSTANCE": str(slot)}, pass_fds=[fd],
            stdin=subprocess.DEVNULL, start_new_session=True)

    def start(self) -> None:
        self.port = 0
        for _ in range(2):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.bind(("127.0.0.1", self.port))
            s.listen(1024)
            self.port = s.getsockname()[1]
            self.socks.append(s)
        self.procs = [self._spawn(i) for i in range(2)]
        http_pids(self.port, 2, self.clock.cap(30))

    def pids(self) -> set[int]:
        return {p.pid for p in self.procs if p.poll() is None}

    def reload(self) -> str:
        lines = []
        for slot in range(2):
            old = self.procs[slot]
            self.procs[slot] = self._spawn(slot)
            time.sleep(3.0)
            old.terminate()
            try:
                old.wait(self.clock.cap(10))
            except subprocess.TimeoutExpired:
                raise BenchError(f"uvicorn pid {old.pid} did not exit within 10 s of SIGTERM") from None
            lines.append(f"slot {slot}: pid {old.pid} -> {self.procs[slot].pid} (old exited {old.returncode})")
        return "; ".join(lines)

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(5)
        for s in self.socks:
            s.close()
        self.procs, self.socks = [], []


def corral_toml(kind: str, instances: int, env: dict[str, str], readiness: str, name: str = "web",
                port: int = 0) -> str:
    envs = ", ".join(f"{k} = {json.dumps(v)}" for k, v in env.items())
    if kind == "uvicorn":
        cmd = [str(UVICORN), "asgi_app:app", "--fd", "3", "--no-access-log", "--log-level", "warning"]
        run_line = f"cmd = [{', '.join(json.dumps(c) for c in cmd)}]"
    else:
        run_line = f"script = {json.dumps(str(APPS / 'plain_app.py'))}\ninterpreter = {json.dumps(PY)}"
    return f"""[[apps]]
name = "{name}"
{run_line}
cwd = {json.dumps(str(APPS))}
instances = {instances}
listen = "tcp://127.0.0.1:{port}"
kill_timeout = "5s"
env = {{ {envs} }}
{readiness}
"""


READY = {
    "listen_timeout": ('listen_timeout = "3s"', 'listen_timeout = "3s"'),
    "http": ('ready = { http = "/healthz", interval = "100ms" }', 'http probe GET /healthz every 100 ms'),
    "notify": ('ready = "notify"', 'ready = "notify" (READY=1 once serving)'),
}


def reload_targets(env: dict[str, str], clock: Clock, work: Path) -> list[Target]:
    def corral(key: str, label: str, kind: str, ready: str) -> CorralTarget:
        toml_line, ready_label = READY[ready]
        return CorralTarget(key, label, ready_label, corral_toml(kind, 2, {"BOOT_DELAY": "1"}, toml_line), env,
                            clock, work)

    return [
        corral("corral-uvicorn", "corral · uvicorn --fd 3", "uvicorn", "listen_timeout"),
        corral("corral-uvicorn-probe", "corral · uvicorn --fd 3, http probe", "uvicorn", "http"),
        BareRollingTarget(env, clock, work),
        corral("corral-plain", "corral · plain Python, corral.app.listen()", "plain", "notify"),
        PM2Target(env, clock, work),
        CorralNodeTarget(env, clock, work),
        GunicornTarget(env, clock, work),
    ]


def measure_reload(t: Target, wrk: str, args: argparse.Namespace, env: dict[str, str], clock: Clock, work: Path,
                   log: Log) -> dict[str, Any]:
    t.start()
    try:
        before = t.pids()
        log(f"{t.key}: up on port {t.port}, pids {sorted(before)}")
        wrk_run(wrk, t.port, 2, 32, 2, env, clock, work / f"{t.key}-warmup.txt", probe=False)
        quiet = wait_quiet(env, clock, args.quiet_wait, log, f"{t.key} steady")
        steady = wrk_run(wrk, t.port, 2, 32, args.seconds, env, clock, work / f"{t.key}-steady.txt")
        steady["quiet_wait"] = quiet
        if t.pids() != before:
            raise BenchError(f"{t.key}: the server processes changed during the steady run "
                             f"({sorted(before)} -> {sorted(t.pids())})")
        log(f"{t.key}: steady {steady['rps']:.0f} req/s, p99 {steady['latency_us']['99'] / 1000:.1f} ms, "
            f"errors {steady['errors_total']}")
        after: set[int] = set()

        def old_new() -> tuple[set[int], set[int]]:
            nonlocal after
            deadline = time.monotonic() + clock.cap(20)
            while time.monotonic() < deadline:  # gunicorn's or PM2's new workers may still be settling
                after = t.pids()
                if len(after) == 2 and not after & before:
                    break
                time.sleep(0.1)
            return before, after

        quiet = wait_quiet(env, clock, args.quiet_wait, log, f"{t.key} reload")
        rel = wrk_run(wrk, t.port, 2, 32, args.seconds, env, clock, work / f"{t.key}-reload.txt",
                      action=t.reload, at=args.reload_at, old_new=old_new)
        rel["quiet_wait"] = quiet
        if len(after) != 2 or after & before:
            raise BenchError(f"{t.key}: after the reload the server pids are {sorted(after)} (before: {sorted(before)})")
        log(f"{t.key}: reload run {rel['rps']:.0f} req/s, p99 {rel['latency_us']['99'] / 1000:.1f} ms, "
            f"errors {rel['errors_total']} ({rel['errors']}), reload took {rel['action_took_s']:.2f} s; "
            f"probe max {rel['probe']['max_ms']} ms at {rel['probe']['max_at_s']} s, failures {rel['probe']['failures']}")
        if isinstance(t, CorralTarget):
            rel["corral_events"] = t.events_since(t.reload_wall)
            # "ready after 1.2s" (notify, probe) or "up for 3s" (listen_timeout)
            rel["ready_after_s"] = [float(m.split()[2].rstrip("s")) for _, _, k, m in rel["corral_events"]
                                    if k == "ready" and m.startswith(("ready after ", "up for ", "listening after "))]
            log(f"{t.key}: corral events of the reload: {rel['corral_events']}")
        return {"key": t.key, "label": t.label, "readiness": t.readiness, "reload_cmd": t.reload_cmd,
                "pids_before": sorted(before), "pids_after": sorted(after), "steady": steady, "reload": rel}
    finally:
        t.stop()


# -- part 2: scaling ------------------------------------------------------------------------------
class BareUvicorn:
    """The same uvicorn app without corral: the bench binds one SO_REUSEPORT socket per process
    (with TCP_NODELAY) and passes it as fd 3, as corral does.  The ceiling for this machine."""

    def __init__(self, n: int, env: dict[str, str], clock: Clock, work: Path, count_dir: Path) -> None:
        self.n, self.env, self.clock, self.work, self.count_dir = n, env, clock, work, count_dir
        self.procs: list[subprocess.Popen] = []
        self.socks: list[socket.socket] = []

    def start(self) -> None:
        self.port = 0
        for _ in range(self.n):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.bind(("127.0.0.1", self.port))
            s.listen(1024)
            self.port = s.getsockname()[1]
            self.socks.append(s)
        for i, s in enumerate(self.socks):
            fd = s.fileno()
            self.procs.append(subprocess.Popen(
                [PY, "-c", "import os,sys; os.dup2(int(sys.argv[1]), 3); os.execv(sys.argv[2], sys.argv[2:])",
                 str(fd), str(UVICORN), "asgi_app:app", "--fd", "3", "--no-access-log", "--log-level", "warning"],
                cwd=str(APPS), env={**self.env, "BOOT_DELAY": "0", "BURN_US": "200", "COUNT_DIR": str(self.count_dir),
                                    "CORRAL_INSTANCE": str(i)},
                pass_fds=[fd], stdin=subprocess.DEVNULL, start_new_session=True))
        http_pids(self.port, self.n, self.clock.cap(30))

    def instance_pids(self) -> dict[int, int]:
        return {i: p.pid for i, p in enumerate(self.procs)}

    def stop(self) -> None:
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(5)
        for s in self.socks:
            s.close()
        self.procs, self.socks = [], []


def pin(instance_pids: dict[int, int], on: bool) -> None:
    """Instance i to CPU i (mod CPU count); off: back to every CPU."""
    cpus = sorted(os.sched_getaffinity(0))
    for i, pid in instance_pids.items():
        os.sched_setaffinity(pid, {cpus[i % len(cpus)]} if on else set(cpus))


# key, label, {instances: (wrk threads, CPUs for wrk or None)}, pin instance i to CPU i, servers
SCALING_MODES = [
    ("corral-t2", "corral; wrk -t2; nothing pinned", {1: (2, None), 2: (2, None)}, False, "corral"),
    ("corral-t1-pinned", "corral; wrk -t1; instance i pinned to CPU i", {1: (1, None), 2: (1, None)}, True, "corral"),
    ("corral-cpu-matched", "corral; CPU-matched: 1 instance + wrk -t1 on CPU 0 vs 2 instances (CPU 0, CPU 1) + "
     "wrk -t2 on both", {1: (1, "0"), 2: (2, None)}, True, "corral"),
    ("bare-t2", "no corral (the bench binds the sockets); wrk -t2; nothing pinned", {1: (2, None), 2: (2, None)},
     False, "bare"),
    ("bare-cpu-matched", "no corral; CPU-matched, as above", {1: (1, "0"), 2: (2, None)}, True, "bare"),
]


def measure_scaling(wrk: str, args: argparse.Namespace, env: dict[str, str], clock: Clock, work: Path,
                    log: Log) -> dict[str, Any]:
    """Every server (1 and 2 instances, three flavours) is started first and stays up (idle when not
    measured), so the 1- and 2-instance runs can alternate, round after round: background load
    on this shared machine then hits both alike."""
    servers: dict[tuple[str, int], Any] = {}
    count_dirs: dict[tuple[str, int], Path] = {}
    runs: dict[str, dict[int, list[dict[str, Any]]]] = {m[0]: {1: [], 2: []} for m in SCALING_MODES}
    try:
        for flavour in ("corral", "bare"):
            for n in (1, 2):
                cdir = count_dirs[(flavour, n)] = work / f"counts-{flavour}-{n}"
                cdir.mkdir()
                if flavour == "bare":
                    server: Any = BareUvicorn(n, env, clock, work, cdir)
                else:
                    app_env = {"BOOT_DELAY": "0", "BURN_US": "200", "COUNT_DIR": str(cdir)}
                    # an explicit port: a second app with "tcp://127.0.0.1:0" is refused by corral
                    # ('app "..." already listens there', see the README)
                    server = CorralTarget(f"scale-{flavour}-{n}", "", "", corral_toml(
                        "uvicorn", n, app_env, 'listen_timeout = "1s"', name=f"scale-{flavour}-{n}",
                        port=free_port()),
                        env, clock, work, instances=n, name=f"scale-{flavour}-{n}")
                servers[(flavour, n)] = server
                server.start()
        log("scaling: 6 uvicorn processes up (corral 1 + 2 instances, no corral 1 + 2)")
        def quiet_pairs(key: str) -> int:
            return sum(1 for a, b in zip(runs[key][1], runs[key][2])
                       if max(a["cpu_cores"]["others"], b["cpu_cores"]["others"]) < QUIET)

        r = 0
        while r < args.max_rounds:
            extra = r >= args.rounds
            todo = [m for m in SCALING_MODES if not extra or quiet_pairs(m[0]) < args.quiet_rounds]
            if not todo or (extra and clock.end - time.monotonic() < 240):
                break
            for key, _label, wrk_by_n, pinned, flavour in todo:
                quiet = wait_quiet(env, clock, args.quiet_wait, log, f"scaling round {r + 1} {key}")
                for n in ((1, 2) if r % 2 == 0 else (2, 1)):
                    server = servers[(flavour, n)]
                    ipids = server.instance_pids()
                    pin(ipids, pinned)
                    threads, wrk_cpus = wrk_by_n[n]
                    wrk_run(wrk, server.port, threads, 32, 1, env, clock, work / f"scale-{key}-{n}-{r}-warmup.txt",
                            probe=False, wrk_cpus=wrk_cpus)
                    res = wrk_run(wrk, server.port, threads, 32, args.scale_seconds, env, clock,
                                  work / f"scale-{key}-{n}-{r}.txt", server_pids=list(ipids.values()),
                                  count_dir=count_dirs[(flavour, n)], probe=False, wrk_cpus=wrk_cpus)
                    pin(ipids, False)
                    res["instance_pids"] = {str(i): p for i, p in ipids.items()}
                    res["round"], res["quiet_wait"] = r + 1, quiet
                    runs[key][n].append(res)
                    log(f"scaling round {r + 1} {key} n={n}: {res['rps']:.0f} req/s, cores "
                        f"{ {k: v for k, v in res['cpu_cores'].items() if k != 'others_top'} }, "
                        f"by pid {res.get('requests_by_pid')}")
            r += 1
    finally:
        for server in servers.values():
            try:
                server.stop()
            except BenchError as exc:
                log(f"scaling: stopping a server failed: {exc}")
    out: dict[str, Any] = {}
    for key, label, wrk_by_n, pinned, _flavour in SCALING_MODES:
        r1, r2 = runs[key][1], runs[key][2]
        if not r1 or not r2:
            continue
        rps1 = statistics.median(x["rps"] for x in r1)
        rps2 = statistics.median(x["rps"] for x in r2)
        paired = [b["rps"] / a["rps"] for a, b in zip(r1, r2)]
        quiet = [b["rps"] / a["rps"] for a, b in zip(r1, r2)
                 if max(a["cpu_cores"]["others"], b["cpu_cores"]["others"]) < QUIET]

        def med(rs: list[dict[str, Any]], what: str) -> float:
            return statistics.median(x["cpu_cores"][what] for x in rs)

        def per_core(rs: list[dict[str, Any]]) -> float:
            return statistics.median(x["rps"] / x["cpu_cores"]["servers"] for x in rs)

        splits = []
        for x in r2:
            c = sorted(x.get("requests_by_pid", {}).values(), reverse=True)
            if len(c) == 2:
                splits.append(c[0] / sum(c))
        out[key] = {
            "label": label, "wrk": {str(n): {"threads": t, "cpus": c} for n, (t, c) in wrk_by_n.items()},
            "pinned": pinned,
            "rps": [rps1, rps2], "scaling": rps2 / rps1, "paired_ratios": paired, "quiet_ratios": quiet,
            "quiet_scaling": statistics.median(quiet) if quiet else None,
            "servers_cores": [med(r1, "servers"), med(r2, "servers")], "wrk_cores": [med(r1, "wrk"), med(r2, "wrk")],
            "others_cores": [med(r1, "others"), med(r2, "others")],
            "rps_per_server_core": [per_core(r1), per_core(r2)],
            "busiest_pid_share": splits, "p99_ms": [statistics.median(x["latency_us"]["99"] for x in r1) / 1000,
                                                    statistics.median(x["latency_us"]["99"] for x in r2) / 1000],
            "runs": {"1": r1, "2": r2},
        }
    return out


# -- report ---------------------------------------------------------------------------------------
def ms(us: float) -> str:
    return f"{us / 1000:.1f} ms"


def ready_note(r: dict[str, Any]) -> str:
    """For corral: when corral judged each new instance ready (its own events)."""
    if "ready_after_s" not in r:
        return ""
    return " (new instances ready after " + " / ".join(f"{x:.2f}" for x in r["ready_after_s"]) + " s)"


def err_text(r: dict[str, Any]) -> str:
    e = r["errors"]
    parts = [f"{k} {e[k]}" for k in ("connect", "read", "write", "timeout") if e[k]]
    if e["status"]:
        parts.append(f"non-2xx {e['status']}")
    return f"**{r['errors_total']}** ({', '.join(parts)})" if parts else "0"


def markdown(part1: list[dict[str, Any]], part2: dict[str, Any] | None, meta: dict[str, Any]) -> str:
    s = meta["settings"]
    out: list[str] = []
    if part1:
        out += [f"**Reload under load**: `wrk -t2 -c32 -d{s['seconds']:g}s --latency` on 127.0.0.1, 2 instances, each "
                f"booting in 1 s; reload triggered {s['reload_at']:g} s in. Steady = the same run without a reload. "
                "Errors = wrk's connect + read + write + timeout (> 2 s) + non-2xx. Other load = CPU cores used "
                "during the run by processes that are not this benchmark's (the machine is shared).", "",
                "| target | readiness | steady req/s | steady p50 / p99 / max | steady errors | reload run req/s "
                "| reload p50 / p99 / max | reload errors | p99 reload ÷ steady | reload took | probe: worst / failures "
                "| other load, steady / reload | goals (0 errors, p99 ≤ 2×) |",
                "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in part1:
            st, rl = r["steady"], r["reload"]
            ratio = rl["latency_us"]["99"] / st["latency_us"]["99"]
            ok = rl["errors_total"] == 0 and st["errors_total"] == 0 and ratio <= 2
            pr = rl["probe"]
            fails = sum(pr["failures"].values())
            out.append(
                f"| {r['label']} | {r['readiness']} | {st['rps']:.0f} | {ms(st['latency_us']['50'])} / "
                f"{ms(st['latency_us']['99'])} / {ms(st['latency_us']['max'])} | {err_text(st)} | {rl['rps']:.0f} | "
                f"{ms(rl['latency_us']['50'])} / {ms(rl['latency_us']['99'])} / {ms(rl['latency_us']['max'])} | "
                f"{err_text(rl)} | {ratio:.2f} | {rl['action_took_s']:.2f} s{ready_note(rl)} | {pr['max_ms']:.0f} ms "
                f"at {pr['max_at_s']:.1f} s / {fails} | {st['cpu_cores']['others']:.2f} / "
                f"{rl['cpu_cores']['others']:.2f} | {'yes' if ok else '**no**'} |")
        out += ["", "Reload command: corral `corral reload web`; PM2 `pm2 reload web`; gunicorn "
                "`kill -HUP <master>` (its \"took\" = until both old workers have exited). For corral, \"new "
                "instances ready after\" is corral's own `ready` event (`corral events`). The probe is one new "
                "connection every 50 ms alongside wrk (5 s timeout), with the time into the run its slowest "
                "request was sent.", ""]
    if part2:
        out += [f"**Scaling** 1 → 2 instances: the uvicorn app burning 200 µs of CPU per request, `wrk -c32 "
                f"-d{s['scale_seconds']:g}s`; rounds alternate 1 and 2 instances, each round after waiting (at most "
                f"{s['quiet_wait_s']:g} s) for other load < {s['quiet_cores']} cores. A round is *quiet* when other "
                f"load stayed < {s['quiet_cores']} cores during both its runs. CPU in cores (CPU-seconds per second, "
                "medians): the server processes (/proc), wrk (rusage), other load (processes that are not this "
                "benchmark's).", "",
                "| configuration | req/s 1 → 2 instances (medians) | scaling, all rounds | scaling, quiet rounds "
                "(goal ≥ 1.9×) | each round: ratio (other load, cores) | busiest pid's share, 2 instances "
                "| server cores 1 → 2 | wrk cores 1 → 2 | other load 1 → 2 | req/s per server core 1 → 2 | p99 1 → 2 |",
                "|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in part2.values():
            share = ", ".join(f"{x * 100:.0f}%" for x in r["busiest_pid_share"]) or "—"
            e1, e2 = r["rps_per_server_core"]
            (s1, s2), (w1, w2), (o1, o2) = r["servers_cores"], r["wrk_cores"], r["others_cores"]
            rounds = ", ".join(
                f"{b['rps'] / a['rps']:.2f} ({a['cpu_cores']['others']:.2f}/{b['cpu_cores']['others']:.2f})"
                for a, b in zip(r["runs"]["1"], r["runs"]["2"]))
            qs = r["quiet_scaling"]
            quiet = (f"{qs:.2f}× {'(met)' if qs >= 1.9 else '**(not met)**'} over {len(r['quiet_ratios'])}"
                     if qs is not None else "no quiet round")
            out.append(
                f"| {r['label']} | {r['rps'][0]:.0f} → {r['rps'][1]:.0f} | {r['scaling']:.2f}× | {quiet} | {rounds} "
                f"| {share} | {s1:.2f} → {s2:.2f} | {w1:.2f} → {w2:.2f} | {o1:.2f} → {o2:.2f} | "
                f"{e1:.0f} → {e2:.0f} ({e2 / e1:.2f}×) | {r['p99_ms'][0]:.1f} → {r['p99_ms'][1]:.1f} ms |")
        out.append("")
    out.append(f"Machine: {meta['cpus']} CPU(s), {meta['platform']}; Python {meta['python']}, uvicorn "
               f"{meta['uvicorn']}, gunicorn {meta['gunicorn']}, node {meta['node']}, PM2 {meta['pm2']}, "
               f"{meta['wrk']}, corral {meta['corral']} at {meta['corral_git']}. Load average "
               f"{meta['loadavg_before'][0]:.2f} before, {meta['loadavg_after'][0]:.2f} after; run took "
               f"{meta['seconds']:.0f} s ({meta['date']}).")
    return "\n".join(out) + "\n"


def update_readme(md: str) -> None:
    readme = BENCH / "README.md"
    begin, end = "<!-- reload-results:begin -->", "<!-- reload-results:end -->"
    try:
        text = readme.read_text()
    except OSError:
        return
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        tail = rest.split(end, 1)[1]
        readme.write_text(f"{head}{begin}\n{md}{end}{tail}")


def versions(env: dict[str, str]) -> dict[str, str]:
    def out(cmd: list[str]) -> str:
        try:
            cp = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=30)
            return (cp.stdout or cp.stderr).strip().splitlines()[0]
        except (OSError, subprocess.TimeoutExpired, IndexError):
            return "?"
    uv = out([str(UVICORN), "--version"]).split()  # "Running uvicorn 0.54.0 with CPython ..."
    return {"uvicorn": uv[2] if len(uv) > 2 else "?",
            "gunicorn": out([str(GUNICORN), "--version"]).split()[-1].rstrip(")"),
            "node": out(["node", "--version"]),
            "wrk": out(["wrk", "-v"]).split("[")[0].strip()}


# -- main -------------------------------------------------------------------------------------------
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=12.0, help="length of each wrk run of part 1")
    ap.add_argument("--reload-at", type=float, default=4.0, help="seconds into the run to trigger the reload")
    ap.add_argument("--scale-seconds", type=float, default=6.0, help="length of each wrk run of part 2")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of part 2 (each: 1 and 2 instances, every mode)")
    ap.add_argument("--quiet-rounds", type=int, default=2,
                    help="after --rounds, repeat a mode until it has this many quiet rounds (or --max-rounds)")
    ap.add_argument("--max-rounds", type=int, default=5)
    ap.add_argument("--quiet-wait", type=float, default=20.0,
                    help="before each measurement, wait at most this long for other load < 0.15 cores")
    ap.add_argument("--only", default="", help="comma-separated target keys of part 1, or 'none' (default: all)")
    ap.add_argument("--no-scaling", action="store_true", help="skip part 2")
    ap.add_argument("--max-seconds", type=float, default=1800.0, help="deadline of the whole run")
    ap.add_argument("--state", type=Path, default=DEFAULT_STATE, help="where to note what to clean up")
    ap.add_argument("--out", type=Path, default=RESULTS, help="folder for reload-latest.json/.md")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, wrk outputs)")
    ap.add_argument("--cleanup", type=Path, metavar="STATE", help="only clean up after the run noted in STATE")
    args = ap.parse_args()

    if args.cleanup is not None:
        if args.cleanup.exists():
            cleanup(json.loads(args.cleanup.read_text()))
            args.cleanup.unlink(missing_ok=True)
        return 0
    if not PM2.exists():
        print(f"reload.py: {PM2} is missing: run bench/run.sh reload (it installs the pinned PM2)", file=sys.stderr)
        return 2
    for prog in (UVICORN, GUNICORN):
        if not prog.exists():
            print(f"reload.py: {prog} is missing (install requirements-test.lock into the venv)", file=sys.stderr)
            return 2

    log = Log()
    clock = Clock(args.max_seconds)
    tag = f"{os.getpid()}-{random.randrange(10**9)}"
    marker = f"corral-reload-bench-{random.randrange(10**9)}"  # no process has it as argv[1]: tag only
    tmp = Path(tempfile.mkdtemp(prefix="corral-bench-reload-"))
    corral_home, pm2_home, work = tmp / "corral", tmp / "pm2", tmp / "work"
    for d in (pm2_home, work):
        d.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("CORRAL_HOME", "PM2_HOME")}
    env.update({"CORRAL_HOME": str(corral_home), "PM2_HOME": str(pm2_home), TAG_VAR: tag})
    state = {"tag": tag, "marker": marker, "tmp": str(tmp), "corral_home": str(corral_home),
             "pm2_home": str(pm2_home), "env": {"CORRAL_HOME": str(corral_home), "PM2_HOME": str(pm2_home)},
             "keep": args.keep}
    save_state(args.state, state)

    def on_signal(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    status = 1
    try:
        wrk = ensure_wrk(log)
        load_before = os.getloadavg()
        for cmd in ([*corral_cli(), "ping"], [str(PM2), "ping"]):
            run(cmd, env, clock.cap(60))
        log(f"daemons up; CORRAL_HOME={corral_home} PM2_HOME={pm2_home}")
        only = {k for k in args.only.split(",") if k}
        part1 = []
        for t in reload_targets(env, clock, work):
            if only and t.key not in only:
                continue
            part1.append(measure_reload(t, wrk, args, env, clock, work, log))
        part2 = None if args.no_scaling else measure_scaling(wrk, args, env, clock, work, log)
        leftovers = cleanup(state, quiet=True) if not args.keep else []
        _, nodev = run(["node", "--version"], env, 30)
        meta = {
            "date": time.strftime("%Y-%m-%d %H:%M:%S %z"), "cpus": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), **versions(env),
            "pm2": json.loads((BENCH / "node_modules" / "pm2" / "package.json").read_text())["version"],
            "corral": _corral_version(), "corral_git": _git_head(), "loadavg_before": load_before,
            "loadavg_after": os.getloadavg(), "seconds": time.monotonic() - log.t0,
            "settings": {"seconds": args.seconds, "reload_at": args.reload_at, "scale_seconds": args.scale_seconds,
                         "wrk_timeout": WRK_TIMEOUT, "only": args.only, "rounds": args.rounds,
                         "quiet_rounds": args.quiet_rounds, "max_rounds": args.max_rounds,
                         "quiet_wait_s": args.quiet_wait, "quiet_cores": QUIET},
            "leftover_processes_killed_by_cleanup": leftovers,
        }
        md = markdown(part1, part2, meta)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "reload-latest.json").write_text(json.dumps(
            {"meta": meta, "reload": part1, "scaling": part2}, indent=1) + "\n")
        (args.out / "reload-latest.md").write_text(md)
        if args.out.resolve() == RESULTS.resolve() and not only and part2 is not None:
            update_readme(md)
        print(md)
        status = 0
    except BenchError as exc:
        print(f"reload.py: FAILED: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        print("reload.py: interrupted, cleaning up", file=sys.stderr)
        status = 130
    except Exception:  # noqa: BLE001 - report, then clean up like any failure
        import traceback

        traceback.print_exc()
        print("reload.py: FAILED (unexpected error above), cleaning up", file=sys.stderr)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        cleanup(state)
        args.state.unlink(missing_ok=True)
        log("done")
    return status


if __name__ == "__main__":
    sys.exit(main())
