"""Timed daemon kills: SIGKILL the daemon when the k-th new process appears during a burst of
spawns (``start`` of N apps, ``scale``, ``reload``), start a new daemon, and count copies.

Shared by ``tests/integration/test_timed_kills.py`` (a few k) and ``bench/timed_kills.py`` (every
k, several rounds).  Standard library only; the corral under test is ``python -m corral`` with
``CORRAL_HOME`` set, so any corral on ``PYTHONPATH`` can be measured.

The new processes are the daemon's children (it forks every instance); a watcher thread reads
``/proc/<daemon>/task/*/children`` and sends SIGKILL the moment the k-th new pid shows up, so the
kill lands anywhere between that fork and whatever the daemon does next.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from corral.process import procfs

ACTIONS = ("start", "scale", "reload")


def new_processes(action: str, n: int) -> int:
    """How many processes the action forks: N apps, N - 1 more instances, N replacements."""
    return n - 1 if action == "scale" else n


def children(pid: int) -> set[int]:
    return set(procfs.children(pid))


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    return dict(e.split("=", 1) for e in raw.decode(errors="replace").split("\0") if "=" in e)


def processes_of(home: str, skip: int | None = None) -> dict[int, dict[str, str]]:
    """Live processes whose environment names HOME (the daemon ``skip`` aside), with their environment."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) in (os.getpid(), skip):
            continue
        env = environ(int(name))
        if env.get("CORRAL_HOME") == home and alive(int(name)):
            out[int(name)] = env
    return out


def describe(pid: int, env: dict[str, str]) -> str:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:80]
    except OSError:
        return f"{pid}: gone"
    mine = " ".join(f"{k}={v}" for k, v in sorted(env.items()) if k.startswith("CORRAL_") and k != "CORRAL_HOME")
    return f"{pid}: state {fields[0]} ppid {fields[1]} pgid {fields[2]} start {fields[19]} [{cmd.strip()}] {mine}"


class Killer(threading.Thread):
    """SIGKILL ``daemon`` as soon as it has ``k`` children it did not have at the start."""

    def __init__(self, daemon: int, k: int, deadline: float) -> None:
        super().__init__(daemon=True)
        self.daemon_pid, self.k, self.deadline = daemon, k, deadline
        self.known = children(daemon)
        self.seen: set[int] = set()
        self.killed_at: float | None = None

    def give_up_in(self, seconds: float) -> None:
        """The action is over: stop watching soon (fewer than k new processes may ever appear)."""
        self.deadline = min(self.deadline, time.monotonic() + seconds)

    def run(self) -> None:
        while time.monotonic() < self.deadline and alive(self.daemon_pid):
            self.seen |= children(self.daemon_pid) - self.known
            if len(self.seen) >= self.k:
                os.kill(self.daemon_pid, signal.SIGKILL)
                self.killed_at = time.monotonic()
                return
            time.sleep(0.0002)  # a polling interval, not a synchronisation


@dataclass
class Trial:
    action: str
    n: int
    k: int
    tracking: str = ""  # what the daemon said it uses (ping --json)
    killed: bool = False
    apps: int = 0
    slots: int = 0
    duplicates: list[str] = field(default_factory=list)
    orphans: list[int] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)  # what each orphan or duplicate was, for the report
    missing: list[str] = field(default_factory=list)
    error: str = ""

    @property
    def ok(self) -> bool:
        return not (self.duplicates or self.orphans or self.missing or self.error)


class Home:
    """One CORRAL_HOME and the CLI that talks to its daemon."""

    def __init__(self, python: str = sys.executable, env: dict[str, str] | None = None) -> None:
        self.root = tempfile.mkdtemp(prefix="corral-tk-", dir="/tmp")
        self.python = python
        self.env = {**os.environ, **(env or {}), "CORRAL_HOME": self.root, "PYTHONDONTWRITEBYTECODE": "1"}
        self.work = Path(tempfile.mkdtemp(prefix="corral-tkw-", dir="/tmp"))

    def run(self, *args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([self.python, "-m", "corral", *args], capture_output=True, text=True,  # not from
                              env=self.env, timeout=timeout, stdin=subprocess.DEVNULL, cwd=self.work)  # a checkout
        if check and proc.returncode != 0:
            raise RuntimeError(f"corral {' '.join(args)} exited {proc.returncode}: {proc.stderr.strip()}")
        return proc

    def daemon(self) -> int | None:
        try:
            text = Path(self.root, "daemon.lock").read_text().split()
        except OSError:
            return None
        pid = int(text[0]) if text else None  # (a corral before 2026-11-30 left stale digits after it)
        return pid if pid and alive(pid) else None

    def ls(self) -> list[dict[str, object]]:
        return json.loads(self.run("ls", "--json").stdout)

    def close(self) -> list[int]:
        """``corral kill``, then SIGKILL whatever is left; returns what was left."""
        self.run("kill", check=False)
        daemon = self.daemon()
        if daemon:
            os.kill(daemon, signal.SIGKILL)
        left = list(processes_of(self.root))
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(self.root, ignore_errors=True)
        shutil.rmtree(self.work, ignore_errors=True)
        return left


def _file(home: Home, n: int, action: str) -> Path:
    apps = n if action == "start" else 1
    instances = n if action == "reload" else 1
    text = "".join(
        f'[[apps]]\nname = "a{i}"\ncmd = ["sleep", "600"]\ninstances = {instances}\n'
        f'kill_timeout = "2s"\nlisten_timeout = "50ms"\n\n' for i in range(apps))
    path = home.work / "corral.toml"
    path.write_text(text)
    return path


def prepare(home: Home, action: str, n: int) -> list[str]:
    """Set the stage; returns the CLI arguments of the timed action."""
    path = _file(home, n, action)
    if action == "start":
        home.run("ping")
        return ["start", str(path)]
    home.run("start", str(path))
    if action == "scale":
        return ["scale", "a0", str(n)]
    return ["reload", "a0"]


def settle(home: Home, timeout: float = 30) -> list[dict[str, object]]:
    """The rows once every instance is online or stopped (nothing launching, stopping, restarting)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = home.ls()
        if all(r["status"] in ("online", "stopped") for r in rows):
            return rows
        if time.monotonic() > deadline:
            raise RuntimeError(f"not settled: {[(r['name'], r['instance'], r['status']) for r in rows]}")
        time.sleep(0.02)


def check(home: Home, trial: Trial, expected: dict[str, int]) -> None:
    """Exactly one live process per online slot (the listed pid), none for a stopped one, nothing
    else of this home alive; ``expected``: apps that must have that many online instances."""
    rows = settle(home)
    online = [r for r in rows if r["status"] == "online"]
    trial.apps = len({r["name"] for r in online})
    trial.slots = len(online)
    live = processes_of(home.root, skip=home.daemon())
    per_slot = Counter((env.get("CORRAL_APP"), env.get("CORRAL_INSTANCE")) for env in live.values())
    trial.duplicates = [f"{a}[{i}] x{c}" for (a, i), c in sorted(per_slot.items(), key=str) if c > 1]
    listed = {int(str(r["pid"])) for r in online}
    trial.orphans = sorted(set(live) - listed)
    doubled = {key for key, c in per_slot.items() if c > 1}
    trial.seen = [describe(pid, live[pid]) for pid in sorted(live)
                  if pid in trial.orphans or (live[pid].get("CORRAL_APP"), live[pid].get("CORRAL_INSTANCE")) in doubled]
    shown = Counter(str(r["name"]) for r in online)
    trial.missing = [f"{a}: {shown.get(a, 0)} of {n} online" for a, n in expected.items() if shown.get(a, 0) != n]
    trial.missing += [f"{r['name']}[{r['instance']}]: pid {r['pid']} not alive"
                      for r in online if int(str(r["pid"])) not in live]


def one(action: str, n: int, k: int, python: str = sys.executable, env: dict[str, str] | None = None) -> Trial:
    """One trial in a home of its own, cleaned up whatever happens."""
    trial = Trial(action, n, k)
    home = Home(python, env)
    try:
        args = prepare(home, action, n)
        trial.tracking = json.loads(home.run("ping", "--json").stdout).get("tracking", "none")
        daemon = home.daemon()
        assert daemon is not None
        killer = Killer(daemon, k, time.monotonic() + 60)
        killer.start()
        home.run(*args, check=False, timeout=60)
        killer.give_up_in(1.0)
        killer.join()
        trial.killed = killer.killed_at is not None
        if trial.killed:
            deadline = time.monotonic() + 10
            while alive(daemon) and time.monotonic() < deadline:
                time.sleep(0.01)
            home.run("ping")  # the next daemon recovers
        # apps the interrupted `start` had not reached yet come back stopped: what was done, no more
        check(home, trial, {} if action == "start" else {"a0": n})
    except Exception as exc:  # noqa: BLE001 - a trial reports what went wrong, the run goes on
        trial.error = f"{type(exc).__name__}: {exc}"
    finally:
        left = home.close()
        if left and not (trial.error or trial.orphans or trial.duplicates):  # a leak of its own
            trial.error = f"left after kill: {left}"
    return trial
